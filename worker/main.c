/* main.c: vmh-worker — consumes the entity topics and syncs EspoCRM and Advoware (SPEC §4, §5).
 * The runtime (runtime.h) does the consuming; the sync handler (sync.h) does the syncing. */
#include "runtime.h"
#include "sync.h"

static const char SUMMARY[] =
    "vmh-worker: consumes <KAFKA_TOPIC_PREFIX>.create|update|delete|sync_check and keeps each\n"
    "Beteiligte equal in EspoCRM and Advoware (per entity: Redis lock, Stammdaten,\n"
    "Kommunikation, status).";

static struct sync_conf conf;

/* The runtime loads the configuration; the handler reads it at its start. */
static void setup(void *ud, const struct cfg *cfg, struct metrics *reg)
{
    sync_conf_init(ud, cfg, reg);
}

int main(int argc, char **argv)
{
    const struct wk_handler handler = {.run = sync_run,
                                       .thread_init = sync_thread_init,
                                       .thread_fini = sync_thread_fini,
                                       .setup = setup,
                                       .gate = sync_ready,
                                       .teardown = sync_conf_fini,
                                       .ud = &conf,
                                       .summary = SUMMARY};
    return worker_main(argc, argv, &handler);
}
