/* cfg_vars.c: every configuration variable of vmh-sync (SPEC §9), in one table: which binary
 * uses it, its type, default and range. `--help`, the README and deploy/ follow this table. */
#include "cfg.h"

#define P      CFG_PRODUCER
#define W      CFG_WORKER
#define C      CFG_CTL
#define DAY_MS (24LL * 3600 * 1000)

/* A row: name, type, default (NULL = none), users, help, then optional designators
 * (.required, .secret, .min/.max, .choices). */
#define VAR(n, t, d, u, h, ...)                                                                    \
    {                                                                                              \
        .name = n, .type = t, .def = d, .users = u, .help = h, __VA_ARGS__                         \
    }
#define REQUIRED      .required = true
#define SECRET        .secret = true
#define RANGE(lo, hi) .min = (lo), .max = (hi)

const struct cfg_def cfg_vars[] = {
    /* Kafka */
    VAR("KAFKA_BROKERS", CFG_STR, NULL, P | W | C,
        "Kafka bootstrap servers, host:port[,host:port...]", REQUIRED),
    VAR("KAFKA_TOPIC_PREFIX", CFG_STR, "vmh.beteiligte", P | W | C,
        "topic prefix: <prefix>.create|update|delete|sync_check|dlq"),
    VAR("KAFKA_GROUP_ID", CFG_STR, "vmh-worker", W | C, "consumer group of the workers"),
    /* Redis */
    VAR("REDIS_URL", CFG_STR, NULL, P | W | C,
        "redis://[:password@]host:port[/db] (locks, token cache, rate limit, cron leader)",
        REQUIRED, SECRET),
    /* EspoCRM */
    VAR("ESPOCRM_URL", CFG_URL, NULL, P | W | C, "EspoCRM base URL, e.g. https://crm.example.com",
        REQUIRED),
    VAR("ESPOCRM_API_KEY", CFG_STR, NULL, P | W | C, "API key of the sync user (X-Api-Key)",
        REQUIRED, SECRET),
    VAR("ESPOCRM_NOTIFY_USER_ID", CFG_STR, NULL, W,
        "user notified when an entity has no assigned user"),
    /* Advoware */
    VAR("ADVOWARE_URL", CFG_URL, NULL, W | C, "Advoware API base URL", REQUIRED),
    VAR("ADVOWARE_TOKEN_URL", CFG_URL, NULL, W | C,
        "token endpoint base URL (default: ADVOWARE_URL)"),
    VAR("ADVOWARE_APP_ID", CFG_STR, NULL, W | C, "Advoware AppID", REQUIRED),
    VAR("ADVOWARE_API_KEY", CFG_BASE64, NULL, W | C,
        "Advoware API key (base64; HMAC-SHA512 key of the token request)", REQUIRED, SECRET),
    VAR("ADVOWARE_KANZLEI", CFG_STR, NULL, W | C, "Advoware Kanzlei", REQUIRED),
    VAR("ADVOWARE_DATABASE", CFG_STR, NULL, W | C, "Advoware database", REQUIRED),
    VAR("ADVOWARE_USER", CFG_STR, NULL, W | C, "Advoware user", REQUIRED),
    VAR("ADVOWARE_PASSWORD", CFG_STR, NULL, W | C, "Advoware password", REQUIRED, SECRET),
    VAR("ADVOWARE_PRODUCT", CFG_INT, "64", W | C, "Advoware product id", RANGE(0, 1000000)),
    VAR("ADVOWARE_ROLE", CFG_INT, "2", W | C, "Advoware role", RANGE(0, 1000000)),
    VAR("ADVOWARE_TZ", CFG_STR, "Europe/Berlin", W | C,
        "time zone of Advoware's zone-less timestamps"),
    VAR("PHONE_DEFAULT_COUNTRY", CFG_STR, "DE", W | C,
        "country (ISO 3166 alpha-2) of national phone numbers typed in Advoware, e.g. 0511/12345"),
    VAR("ADVOWARE_MAX_RPS", CFG_DOUBLE, "0", W | C,
        "requests/s to Advoware summed over all workers (0 = unlimited)", RANGE(0, 100000)),
    /* HTTP */
    VAR("HTTP_TIMEOUT_MS", CFG_DURATION, "30000", P | W | C, "timeout of one outbound HTTP call",
        RANGE(100, 600000)),
    /* Webhook ingress (producer) */
    VAR("WEBHOOK_LISTEN", CFG_HOSTPORT, "0.0.0.0:8080", P, "address of the webhook HTTP server"),
    VAR("WEBHOOK_PUBLIC_URL", CFG_URL, NULL, C,
        "vmh-producer's base URL as EspoCRM reaches it (https://sync.example.com): vmhctl webhooks "
        "register points the webhooks at <it>/webhook/beteiligte/<event>, vmhctl doctor checks "
        "them"),
    VAR("WEBHOOK_SECRETS", CFG_STR, NULL, P,
        "webhookId:secretKey[,webhookId:secretKey...] (required unless WEBHOOK_ALLOW_UNSIGNED=1)",
        SECRET),
    VAR("WEBHOOK_ALLOW_UNSIGNED", CFG_BOOL, "0", P, "accept unsigned webhooks (development only)"),
    VAR("WEBHOOK_MAX_BODY", CFG_INT, "1048576", P, "largest webhook body in bytes (413 above)",
        RANGE(1024, 64 * 1024 * 1024)),
    VAR("WEBHOOK_ACK_TIMEOUT_MS", CFG_DURATION, "10000", P,
        "how long a webhook waits for Kafka's acknowledgement (503 after)", RANGE(100, 120000)),
    VAR("WEBHOOK_MAX_CONNECTIONS", CFG_INT, "1024", P, "simultaneous webhook connections",
        RANGE(1, 100000)),
    VAR("WEBHOOK_MAX_CONNECTIONS_PER_CLIENT", CFG_INT, "256", P,
        "simultaneous webhook connections from one client address (behind a proxy: the proxy's)",
        RANGE(1, 100000)),
    VAR("WEBHOOK_MAX_BODY_HELD", CFG_INT, "67108864", P,
        "bytes of webhook bodies held before their signature is checked, all clients together "
        "(over it: 503, EspoCRM retries)",
        RANGE(1024, 4LL * 1024 * 1024 * 1024)),
    VAR("WEBHOOK_MAX_BODY_HELD_PER_CLIENT", CFG_INT, "16777216", P,
        "the same for one client address", RANGE(1024, 4LL * 1024 * 1024 * 1024)),
    /* Cron (producer; vmhctl scan) */
    VAR("CRON_INTERVAL_S", CFG_DURATION, "900", P, "fallback scan interval", RANGE(1000, DAY_MS)),
    VAR("CRON_RETRY_INTERVAL_S", CFG_DURATION, "60", P | C, "retry scan interval",
        RANGE(1000, DAY_MS)),
    VAR("CRON_BATCH", CFG_INT, "100", P | C, "most entities selected by one fallback scan",
        RANGE(1, 10000)),
    /* Worker */
    VAR("WORKER_CONCURRENCY", CFG_INT, "32", W, "syncs in flight per worker process",
        RANGE(1, 1024)),
    VAR("WORKER_MAX_PENDING", CFG_INT, "0", W,
        "queued + running messages before consumption pauses (0 = 10 x WORKER_CONCURRENCY)",
        RANGE(0, 1000000)),
    /* SPEC §4.4 names 300 000 ms; issue 13 asks that a dead holder (kill -9) block its party
     * for seconds, not minutes. A live run renews at TTL/3 (every 5 s), so a slow run keeps its
     * lock; only the renewal needs Redis, and a run checks its lock before every write. */
    VAR("LOCK_TTL_MS", CFG_DURATION, "15000", W | C,
        "TTL of the per-entity Redis lock (renewed at TTL/3); a crashed worker's lock frees its "
        "party after at most this long",
        RANGE(1000, DAY_MS)),
    /* SPEC §4.4 gives up after LOCK_WAIT_MS and completes the messages unsynced; issue 13: never
     * drop the work. The messages wait in the executor instead, this long at most between two
     * tries. */
    VAR("LOCK_WAIT_MS", CFG_DURATION, "1000", W,
        "longest pause between two tries of a message at a busy entity lock (50 ms doubling up "
        "to this; the message waits, it is never dropped)",
        RANGE(0, DAY_MS)),
    VAR("REBALANCE_DRAIN_MS", CFG_DURATION, "10000", W, "how long a revoke waits for running syncs",
        RANGE(0, 600000)),
    VAR("SHUTDOWN_DRAIN_MS", CFG_DURATION, "25000", W, "how long SIGTERM waits for running syncs",
        RANGE(0, 600000)),
    VAR("CREDENTIALS_RECHECK_MS", CFG_DURATION, "30000", W,
        "after EspoCRM or Advoware refused the credentials: how often one run tries them again "
        "(meanwhile the worker takes no work and /readyz answers 503)",
        RANGE(100, DAY_MS)),
    VAR("SYNC_RETRY_BACKOFF", CFG_DURATIONS, "1m,5m,15m,60m,240m", W,
        "wait after the 1st, 2nd, ... transient failure (the last entry for any later one); the "
        "5th failure in a row is permanent (SPEC 5.6)",
        RANGE(1000, 7 * DAY_MS)),
    VAR("SYNC_MARK_SYNCING", CFG_BOOL, "0", W,
        "write syncStatus=syncing at the start of each run (one more call)"),
    /* Operations */
    VAR("METRICS_LISTEN", CFG_HOSTPORT, "0.0.0.0:9090", P | W,
        "address of /healthz, /readyz and /metrics"),
    VAR("LOG_LEVEL", CFG_ENUM, "info", P | W | C, "log level", .choices = "debug|info|warn|error"),
    VAR("LOG_FORMAT", CFG_ENUM, "json", P | W | C, "log line format", .choices = "json|text"),
    {.name = NULL},
};
