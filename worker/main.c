/* main.c: vmh-worker — consumes the entity topics and syncs EspoCRM and Advoware (SPEC §4, §5).
 * Foundation stage: configuration, logging and the ops endpoint; the consumer, executor and
 * sync engine land with their issues. */
#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"

static const char SUMMARY[] =
    "vmh-worker: consumes <KAFKA_TOPIC_PREFIX>.create|update|delete|sync_check and keeps each\n"
    "Beteiligte equal in EspoCRM and Advoware (per entity: Redis lock, Stammdaten,\n"
    "Kommunikation, status).";

int main(int argc, char **argv)
{
    ops_block_signals();
    struct cfg *cfg = cfg_load_or_exit(argc, argv, SUMMARY, CFG_WORKER);
    ops_log_setup(cfg);

    int rc = 1;
    struct metrics *reg = metrics_new();
    struct ops_server *ops = ops_server_start_cfg(cfg, reg, NULL, NULL);
    if (!ops)
        goto out;
    log_info("vmh-worker started", LOG_STR("metrics_listen", cfg_str(cfg, "METRICS_LISTEN")));
    int sig = ops_wait_for_signal();
    log_info("vmh-worker stopping", LOG_INT("signal", sig));
    rc = 0;
out:
    ops_server_stop(ops);
    metrics_free(reg);
    cfg_free(cfg);
    return rc;
}
