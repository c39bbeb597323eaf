/* main.c: vmh-producer — EspoCRM webhooks and cron ticks into Kafka (SPEC §3).
 * Foundation stage: configuration, logging and the ops endpoint; webhook ingress and cron land
 * with their issue. */
#include <stdio.h>
#include <stdlib.h>

#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"

static const char SUMMARY[] =
    "vmh-producer: receives EspoCRM webhooks and runs the cron scans, producing Kafka messages\n"
    "on <KAFKA_TOPIC_PREFIX>.create|update|delete|sync_check keyed by entity id.";

/* Checks the combinations the table cannot express; exits 2 naming the variable. */
static void check_config(const struct cfg *cfg)
{
    if (!cfg_str(cfg, "WEBHOOK_SECRETS") && !cfg_bool(cfg, "WEBHOOK_ALLOW_UNSIGNED")) {
        fprintf(stderr,
                "vmh-producer: WEBHOOK_SECRETS: required unless WEBHOOK_ALLOW_UNSIGNED=1\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    ops_block_signals();
    struct cfg *cfg = cfg_load_or_exit(argc, argv, SUMMARY, CFG_PRODUCER);
    check_config(cfg);
    ops_log_setup(cfg);
    if (cfg_bool(cfg, "WEBHOOK_ALLOW_UNSIGNED"))
        log_warn("WEBHOOK_ALLOW_UNSIGNED=1: webhook signatures are NOT checked (development only)");

    int rc = 1;
    struct metrics *reg = metrics_new();
    struct ops_server *ops = ops_server_start_cfg(cfg, reg, NULL, NULL);
    if (!ops)
        goto out;
    log_info("vmh-producer started", LOG_STR("metrics_listen", cfg_str(cfg, "METRICS_LISTEN")));
    int sig = ops_wait_for_signal();
    log_info("vmh-producer stopping", LOG_INT("signal", sig));
    rc = 0;
out:
    ops_server_stop(ops);
    metrics_free(reg);
    cfg_free(cfg);
    return rc;
}
