# Turns results.raw lines "IMPL N KEY VALUE" into the table of bench/run.sh.
# ratio = ours/theirs; the "better" column says which direction wins.
BEGIN {
	nk = split("create_rate paced_lag_s paced_lag_worst paced_lost paced_overruns " \
		"cpu_tx_us cpu_rx_us rss_int_B rss_ext_B dump_i_lps dump_e_lps " \
		"stall_lag_s resync_R_s bulk_B_s resync_n_s commit_ct_rate commit_ct_logged commit_ct_in_kernel " \
		"commit_vs_kernel commit_vs_listened burst_inject_rate burst_lag_s burst_lag_worst burst_lost " \
		"burst_overruns exp_masters_lag_s exp_in_peer_cache " \
		"exp_create_rate commit_empty_s commit_exp_rate commit_exp_logged commit_exp_in_kernel commit_exp_vs_kernel", order, " ")
	lab["create_rate"] = "kernel batched create rate (/s)|higher"
	lab["paced_lag_s"] = "paced: peer complete after inject end (s)|lower"
	lab["paced_lag_worst"] = "paced: peer complete, worst run (s)|lower"
	lab["paced_lost"] = "paced: events lost (worst run)|lower"
	lab["paced_overruns"] = "paced: netlink overruns (worst run)|lower"
	lab["cpu_tx_us"] = "CPU per replicated entry, sender (us)|lower"
	lab["cpu_rx_us"] = "CPU per replicated entry, receiver (us)|lower"
	lab["rss_int_B"] = "RSS per entry, internal cache (B)|lower"
	lab["rss_ext_B"] = "RSS per entry, external cache (B)|lower"
	lab["dump_i_lps"] = "-i ct dump (lines/s)|higher"
	lab["dump_e_lps"] = "-e ct dump (lines/s)|higher"
	lab["stall_lag_s"] = "paced during -i loop: peer complete after (s)|lower"
	lab["resync_R_s"] = "-R ct (s)|lower"
	lab["bulk_B_s"] = "-B until peer complete (s)|lower"
	lab["resync_n_s"] = "-n until peer complete (s)|lower"
	lab["commit_ct_rate"] = "-c ct commit rate, kernel-verified (/s)|higher"
	lab["commit_ct_logged"] = "-c ct commit rate, daemon-logged time (/s)|higher"
	lab["commit_ct_in_kernel"] = "-c ct: entries in peer kernel|higher"
	lab["commit_vs_kernel"] = "-c ct rate / kernel create rate (%)|higher"
	lab["commit_vs_listened"] = "-c ct rate / burst injection rate (%)|higher"
	lab["burst_inject_rate"] = "burst: injection rate (/s)|higher"
	lab["burst_lag_s"] = "burst: peer complete after burst end (s)|lower"
	lab["burst_lag_worst"] = "burst: peer complete, worst run (s)|lower"
	lab["burst_lost"] = "burst: events lost (worst run)|lower"
	lab["burst_overruns"] = "burst: netlink overruns (worst run)|lower"
	# Losses are judged by the worst run, not the median: one overrun
	# that costs 30 s is what a firewall is judged by.
	worst["paced_lost"] = worst["paced_overruns"] = 1
	worst["burst_lost"] = worst["burst_overruns"] = 1
	lab["exp_masters_lag_s"] = "exp: masters on peer after inject (s)|lower"
	lab["exp_in_peer_cache"] = "exp: expectations in peer cache|higher"
	lab["commit_exp_rate"] = "-c expect commit rate, kernel-verified (/s)|higher"
	lab["commit_exp_logged"] = "-c expect commit rate, daemon-logged time (/s)|higher"
	lab["commit_exp_in_kernel"] = "-c expect: expectations in peer kernel|higher"
	lab["commit_empty_s"] = "-c expect with nothing to commit (s)|lower"
	lab["exp_create_rate"] = "kernel batched expectation create rate (/s)|higher"
	lab["commit_exp_vs_kernel"] = "-c expect rate / kernel exp create rate (%)|higher"
}
{
	if (!($2 in seen)) { seen[$2] = 1; sizes[++ns] = $2 }
	k = $1 SUBSEP $2 SUBSEP $3
	all[k, ++cnt[k]] = $4
}
function num(x) { return x ~ /^[0-9]+(\.[0-9]+)?$/ }
# Several repetitions: the median of the numeric values; a failure in any
# repetition is shown rather than hidden ("incomplete 1/3").
function summarize(k,    i, m, bad, a, t, j, first, kp) {
	m = 0; bad = 0
	for (i = 1; i <= cnt[k]; i++) {
		if (num(all[k, i]))
			a[++m] = all[k, i] + 0
		else {
			bad++
			first = all[k, i]
		}
	}
	if (bad > 0)
		return cnt[k] == 1 ? first : sprintf("%s(%d/%d)", \
			first ~ /^incomplete/ ? "incomplete" : first, bad, cnt[k])
	for (i = 2; i <= m; i++)	# insertion sort: m is tiny
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	split(k, kp, SUBSEP)
	if (kp[3] in worst)
		t = a[m]
	else if (m % 2)
		t = a[(m + 1) / 2]
	else
		t = (a[m / 2] + a[m / 2 + 1]) / 2
	# keep the precision the script printed
	return (all[k, 1] ~ /\./) ? sprintf("%.3f", t) : sprintf("%.0f", t)
}
# The slowest run; a run that never completed wins.
function worst_of(k,    i, w, x) {
	w = ""
	for (i = 1; i <= cnt[k]; i++) {
		x = all[k, i]
		if (!num(x))
			return x
		if (w == "" || x + 0 > w + 0)
			w = x
	}
	return w
}
END {
	for (k in cnt) {
		v[k] = summarize(k)
		split(k, kp, SUBSEP)
		if (kp[3] ~ /^(paced|burst)_lag_s$/ && cnt[k] > 1)
			v[kp[1], kp[2], substr(kp[3], 1, 6) "lag_worst"] = worst_of(k)
	}
	for (s = 1; s <= ns; s++) {
		n = sizes[s]
		kr = v["kernel", n, "create_rate"]
		ke = v["kernel", n, "exp_create_rate"]
		for (im = 1; im <= 2; im++) {
			i = im == 1 ? "theirs" : "ours"
			c = v[i, n, "commit_ct_rate"]
			if (num(c) && num(kr) && kr > 0)
				v[i, n, "commit_vs_kernel"] = sprintf("%.0f", 100 * c / kr)
			b = v[i, n, "burst_inject_rate"]
			if (num(c) && num(b) && b > 0)
				v[i, n, "commit_vs_listened"] = sprintf("%.0f", 100 * c / b)
			c = v[i, n, "commit_exp_rate"]
			if (num(c) && num(ke) && ke > 0)
				v[i, n, "commit_exp_vs_kernel"] = sprintf("%.0f", 100 * c / ke)
		}
		printf "\n== N=%s\n", n
		printf "%-48s %14s %14s %9s  %s\n", "metric", "ours", "theirs",
			"ours/th", "better"
		for (k = 1; k <= nk; k++) {
			key = order[k]
			split(lab[key], L, "|")
			if (key == "create_rate" || key == "exp_create_rate") {
				x = key == "create_rate" ? kr : ke
				if (x != "")
					printf "%-48s %14s %14s %9s  %s\n", L[1],
						x, x, "-", "(same kernel)"
				continue
			}
			o = v["ours", n, key]; t = v["theirs", n, key]
			if (o == "" && t == "")
				continue
			r = "n/a"
			if (num(o) && num(t) && t > 0)
				r = sprintf("%.2f", o / t)
			printf "%-48s %14s %14s %9s  %s\n", L[1],
				o == "" ? "-" : o, t == "" ? "-" : t, r, L[2]
		}
	}
}
