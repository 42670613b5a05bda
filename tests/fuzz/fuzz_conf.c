/*
 * libFuzzer harness for the configuration parser: any bytes must give
 * either a configuration or error messages, never a crash, hang or leak.
 * A successful parse must also survive printing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *null = fopen("/dev/null", "w");
	struct ctd_conf *c;

	if (!null)
		return 0;
	c = conf_load_buffer("fuzz", (const char *)data, size, null, null);
	if (c) {
		conf_print(c, null);
		conf_free(c);
	}
	fclose(null);
	return 0;
}
