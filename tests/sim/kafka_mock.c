/* kafka_mock.c: kafka-mock, the development Kafka of SPEC §8: librdkafka's mock cluster (real
 * Kafka protocol over loopback TCP, consumer groups, offset commits) with the five topics of
 * SPEC §2 created up front. Prints the bootstrap string as its first line on stdout, logs to
 * stderr, runs until SIGTERM or SIGINT, then destroys the cluster and exits 0.
 *
 * With --admin-port, a small HTTP interface sets brokers down and up (chaos tests).
 *
 * Exit codes: 0 after a signal or --help, 1 if the cluster cannot be set up, 2 on bad usage. */
#include "httpd.h"
#include "httpd_thread.h"
#include "kafka.h"
#include "log.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "kafka-mock"

/* Command-line settings and their defaults. */
static struct {
    int brokers;
    int partitions;
    const char *topic_prefix;
    int admin_port; /* -1 = no admin interface */
} conf = {
    .admin_port = -1,
    .brokers = 3,
    .partitions = 12,
    .topic_prefix = "vmh.beteiligte",
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROG " [options]\n"
            "\n"
            "Hosts librdkafka's mock Kafka cluster on 127.0.0.1 with the topics\n"
            "<prefix>.create|update|delete|sync_check|dlq, prints the bootstrap servers as\n"
            "the first line on stdout and runs until SIGTERM or SIGINT. Logs go to stderr.\n"
            "\n"
            "Options:\n"
            "  --brokers N         number of brokers (default %d)\n"
            "  --partitions N      partitions per topic (default %d)\n"
            "  --topic-prefix P    topic name prefix (default %s)\n"
            "  --admin-port N      serve fault injection on 127.0.0.1:N (0 = a free port; its\n"
            "                      address is the second line on stdout): POST\n"
            "                      /_mock/brokers/down|up, /_mock/brokers/{id}/down|up\n"
            "  -h, --help          this text\n",
            conf.brokers, conf.partitions, conf.topic_prefix);
}

/* One line on stderr and exit 2: the usage-error contract of every binary. */
static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...);
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    exit(2);
}

/* A decimal integer in [min, max], or a usage error naming the option. */
static int parse_int_option(const char *option, const char *s, int min, int max)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        usage_error("--%s: expected an integer in %d..%d, got \"%s\"", option, min, max, s);
    return (int)v;
}

static void parse_args(int argc, char **argv)
{
    enum { OPT_BROKERS = 1000, OPT_PARTITIONS, OPT_TOPIC_PREFIX, OPT_ADMIN_PORT };
    static const struct option options[] = {
        {"brokers", required_argument, NULL, OPT_BROKERS},
        {"partitions", required_argument, NULL, OPT_PARTITIONS},
        {"topic-prefix", required_argument, NULL, OPT_TOPIC_PREFIX},
        {"admin-port", required_argument, NULL, OPT_ADMIN_PORT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    opterr = 0; /* our own one-line messages instead of getopt's */
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_BROKERS:
            conf.brokers = parse_int_option("brokers", optarg, 1, 100);
            break;
        case OPT_PARTITIONS:
            conf.partitions = parse_int_option("partitions", optarg, 1, 10000);
            break;
        case OPT_TOPIC_PREFIX:
            if (!*optarg)
                usage_error("--topic-prefix: must not be empty");
            conf.topic_prefix = optarg;
            break;
        case OPT_ADMIN_PORT:
            conf.admin_port = parse_int_option("admin-port", optarg, 0, 65535);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            usage_error("%s: missing value", argv[optind - 1]);
        default:
            if (optopt)
                usage_error("unknown option -%c", optopt);
            usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument \"%s\"", argv[optind]);
}

/* The handle the mock cluster lives on. It never connects anywhere, so it gets no
 * bootstrap.servers (librdkafka notes that in the log) and none of the KAFKA_CFG_* settings,
 * which are meant for the clients; only the logger. */
static rd_kafka_t *mock_handle_new(void)
{
    char errstr[512];
    rd_kafka_conf_t *rk_conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (kafka_conf_set(rk_conf, "client.id", PROG, errstr, sizeof errstr) != 0)
        goto err_conf;
    kafka_conf_set_logger(rk_conf);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, rk_conf, errstr, sizeof errstr);
    if (!rk)
        goto err_conf;
    return rk; /* rk owns rk_conf now */

err_conf:
    log_error("cannot create the mock cluster's handle", LOG_STR("error", errstr));
    rd_kafka_conf_destroy(rk_conf);
    return NULL;
}

/* Creates {prefix}.create|update|delete|sync_check|dlq. 0, or -1 (logged). */
static int create_topics(rd_kafka_mock_cluster_t *mcluster)
{
    int replication = conf.brokers < 3 ? conf.brokers : 3;
    char topic[512];

    for (int i = 0; i < KAFKA_TOPIC_COUNT; i++) {
        enum kafka_topic_kind kind = (enum kafka_topic_kind)i;
        if (kafka_topic_name(conf.topic_prefix, kind, topic, sizeof topic) != 0) {
            log_error("topic prefix too long", LOG_STR("prefix", conf.topic_prefix));
            return -1;
        }
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mcluster, topic, conf.partitions, replication);
        if (err) {
            log_error("cannot create topic", LOG_STR("topic", topic),
                      LOG_STR("error", rd_kafka_err2str(err)));
            return -1;
        }
    }
    return 0;
}

/* ---- admin interface: broker faults for chaos tests, on its own thread and loop ---------- */

struct admin {
    rd_kafka_mock_cluster_t *mcluster;
    struct httpd_thread *thread;
};

/* Sets one broker (id > 0) or all (id 0) down or up. */
static void set_brokers(struct admin *a, int id, bool up)
{
    for (int b = id ? id : 1; b <= (id ? id : conf.brokers); b++) {
        if (up)
            rd_kafka_mock_broker_set_up(a->mcluster, b);
        else
            rd_kafka_mock_broker_set_down(a->mcluster, b);
    }
    log_info(up ? "brokers up" : "brokers down", LOG_INT("broker", id));
}

static void on_brokers(struct httpd_req *req, void *ud)
{
    const char *id_s = httpd_req_param(req, "id");
    const char *action = httpd_req_param(req, "action");
    int id = id_s ? atoi(id_s) : 0;
    bool up = action && strcmp(action, "up") == 0;
    if (!action || (!up && strcmp(action, "down") != 0) || id < 0 || id > conf.brokers ||
        (id_s && id == 0)) {
        httpd_respond_error(req, 404, "use /_mock/brokers[/{id}]/down|up");
        return;
    }
    set_brokers(ud, id, up);
    httpd_respond_json(req, 200, json_pack("{s:i,s:b}", "broker", id, "up", up));
}

static int admin_routes(struct httpd *srv, void *ud)
{
    return httpd_route(srv, "POST", "/_mock/brokers/{action}", on_brokers, ud, 0) ||
                   httpd_route(srv, "POST", "/_mock/brokers/{id}/{action}", on_brokers, ud, 0)
               ? -1
               : 0;
}

/* Starts the admin server and prints its address as the second stdout line. */
static struct admin *admin_start(rd_kafka_mock_cluster_t *mcluster)
{
    char addr[64], err[256] = "";
    int port = 0;
    struct admin *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->mcluster = mcluster;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", conf.admin_port);
    if (!(a->thread = httpd_thread_start(addr, NULL, admin_routes, a, &port, err, sizeof err))) {
        log_error("cannot start the admin interface", LOG_STR("address", addr),
                  LOG_STR("error", err));
        free(a);
        return NULL;
    }
    printf("admin listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    return a;
}

static void admin_stop(struct admin *a)
{
    if (!a)
        return;
    httpd_thread_stop(a->thread);
    free(a);
}

int main(int argc, char **argv)
{
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;
    struct admin *admin = NULL;
    sigset_t stop_signals;
    int sig = 0, rc = 1;

    parse_args(argc, argv);

    /* Block the stop signals before librdkafka starts its threads (they inherit the mask), so
     * only sigwait() below ever sees them. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    rk = mock_handle_new();
    if (!rk)
        goto out;
    mcluster = rd_kafka_mock_cluster_new(rk, conf.brokers);
    if (!mcluster) {
        log_error("cannot create the mock cluster");
        goto out;
    }
    if (create_topics(mcluster) != 0)
        goto out;

    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mcluster);
    printf("%s\n", bootstrap);
    fflush(stdout);
    log_info("kafka-mock ready", LOG_STR("bootstrap", bootstrap), LOG_INT("brokers", conf.brokers),
             LOG_INT("partitions", conf.partitions), LOG_STR("topic_prefix", conf.topic_prefix));

    if (conf.admin_port >= 0 && !(admin = admin_start(mcluster)))
        goto out;
    if (sigwait(&stop_signals, &sig) != 0)
        goto out;
    log_info("kafka-mock stopping", LOG_STR("signal", strsignal(sig)));
    rc = 0;

out:
    admin_stop(admin);
    if (mcluster)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (rk) {
        rd_kafka_destroy(rk);
        if (rd_kafka_wait_destroyed(5000) != 0)
            log_warn("librdkafka did not shut down within 5 s");
    }
    return rc;
}
