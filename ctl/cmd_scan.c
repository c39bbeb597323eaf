/* cmd_scan.c: vmhctl scan [--retry] (SPEC §3.2, §11): one cron scan now, the producer's own
 * (producer/cron.h cron_scan: the same queries, lock checks and sync_check messages with their
 * reasons), on vmh-producer's Kafka producer (ksend.h). No leader key: an operator's scan runs
 * whatever the producers' ticks do; a message twice is harmless (SPEC §1.1). */
#include "cmd.h"

#include <string.h>
#include <time.h>

#include "cron.h"
#include "ksend.h"
#include "lock.h"

#define FLUSH_MS 30000

int cmd_scan(struct ctl *c, int argc, char **argv)
{
    bool retry = argc == 1 && strcmp(argv[0], "--retry") == 0;
    if (argc > 1 || (argc == 1 && !retry)) {
        fprintf(stderr, "vmhctl scan: unknown argument \"%s\" (scan [--retry])\n", argv[0]);
        return CTL_USAGE;
    }
    char err[512], serr[512] = "";
    struct espo *espo = ctl_espo(c, err, sizeof err);
    struct redis_client *r = espo ? ctl_redis(c, err, sizeof err) : NULL;
    struct ksend *s = r ? ksend_new(c->brokers, c->prefix, err, sizeof err) : NULL;
    if (!s) {
        fprintf(stderr, "vmhctl scan: %s\n", err);
        return CTL_PROBLEM;
    }
    struct cron_deps deps = {
        .espo = espo, .redis = r, .kafka = ksend_kprod(s), .instance = lock_instance_id()};
    struct cron_result res;
    enum cron_scan_kind kind = retry ? CRON_SCAN_RETRY : CRON_SCAN_FALLBACK;
    long long interval = cfg_duration_ms(c->cfg, "CRON_RETRY_INTERVAL_S");
    int rc = cron_scan(&deps, kind, (int)cfg_int(c->cfg, "CRON_BATCH"), interval, false, time(NULL),
                       &res, serr, sizeof serr);
    long acked = 0, failed = 0;
    ksend_close(s, FLUSH_MS, &acked, &failed);
    int total = 0;
    json_t *by = json_object();
    ctl_say(c, "%s scan:", retry ? "retry" : "fallback");
    for (int i = 0; i < CRON_REASONS; i++) {
        total += res.selected[i];
        json_object_set_new(by, cron_reason_name((enum cron_reason)i),
                            json_integer(res.selected[i]));
        if (res.selected[i] || !retry)
            ctl_say(c, " %s %d", cron_reason_name((enum cron_reason)i), res.selected[i]);
    }
    ctl_say(c, "; skipped (locked) %d; sync_check messages acknowledged %ld, failed %ld\n",
            res.skipped_locked, acked, failed);
    if (rc != 0)
        ctl_say(c, "scan stopped: %s (what was selected before was sent)\n", serr);
    ctl_emit(c, json_pack("{s:s,s:i,s:o,s:i,s:I,s:I,s:o}", "scan", retry ? "retry" : "fallback",
                          "selected", total, "byReason", by, "skippedLocked", res.skipped_locked,
                          "acknowledged", (json_int_t)acked, "failed", (json_int_t)failed, "error",
                          rc != 0 ? json_string(serr) : json_null()));
    return rc != 0 || failed > 0 || acked < total ? CTL_PROBLEM : CTL_OK;
}
