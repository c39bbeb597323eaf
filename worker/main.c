/* main.c: vmh-worker — consumes the entity topics and syncs EspoCRM and Advoware (SPEC §4, §5).
 * The runtime (runtime.h) does the consuming; this file plugs the sync handler into it. */
#include "log.h"
#include "runtime.h"

static const char SUMMARY[] =
    "vmh-worker: consumes <KAFKA_TOPIC_PREFIX>.create|update|delete|sync_check and keeps each\n"
    "Beteiligte equal in EspoCRM and Advoware (per entity: Redis lock, Stammdaten,\n"
    "Kommunikation, status).";

/* The sync engine plugs in here (SPEC §5). Until it lands, a run only records what it saw. */
static enum wk_result sync_entity(void *ud, struct wk_ctx *ctx, const char *entity_id,
                                  const struct wk_event *ev, size_t n)
{
    (void)ud;
    (void)ctx;
    log_info("entity run", LOG_STR("entity_id", entity_id), LOG_INT("messages", n),
             LOG_STR("event", msg_event_name(ev[n - 1].m->event)));
    return WK_DONE;
}

int main(int argc, char **argv)
{
    static const struct wk_handler handler = {.run = sync_entity, .summary = SUMMARY};
    return worker_main(argc, argv, &handler);
}
