#ifndef CTD_SDNOTIFY_H
#define CTD_SDNOTIFY_H
/*
 * The systemd notification protocol (sd_notify(3), sd_watchdog_enabled(3)),
 * spoken directly: one datagram to $NOTIFY_SOCKET. Linking libsystemd for
 * it cost every client command (-c, -f, -R ... in a failover script) about
 * half a millisecond of dynamic loading.
 */
#include <stdint.h>

/* Send `state` ("READY=1", "WATCHDOG=1", ...). 1 sent, 0 no NOTIFY_SOCKET,
 * negative errno on failure. */
int sdn_notify(const char *state);

/* The watchdog interval systemd asks for: 1 with *usec set, 0 if none (or
 * meant for another process: WATCHDOG_PID), negative errno if malformed. */
int sdn_watchdog_enabled(uint64_t *usec);

#endif
