/* main.c: vmhctl — the on-call engineer's tool (SPEC §11): configuration as the other binaries
 * (cfg_vars.c rows for vmhctl), the subcommand, its answer (text, or --json), exit 0 ok / 1
 * found a problem / 2 usage or configuration. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "cmd.h"
#include "log.h"
#include "phone.h"
#include "synctime.h"

static const char SUMMARY[] =
    "vmhctl: look at and steer vmh-sync (SPEC 11). Answers for a person; --json for scripts.\n"
    "Exit code: 0 ok, 1 found a problem, 2 usage or configuration.\n"
    "\n"
    "Commands:\n"
    "  status <id>               why is party <id> (not) synced: EspoCRM status fields, lock,\n"
    "                            link, create mark, and field by field / entry by entry what\n"
    "                            EspoCRM, Advoware and the baseline hold and what the next run\n"
    "                            would do (reads only; exit 1 unless clean with nothing to do)\n"
    "  resync <id>...            sync_check messages (source cli), keyed and partitioned exactly\n"
    "                            as vmh-producer does; also retries a failed party now\n"
    "  reset <id>                syncStatus dirty, syncRetryCount 0 (EspoCRM PUT with\n"
    "                            X-Version-Number); the cron or a resync then runs it\n"
    "  unlock <id>               frees the party's Redis lock (only the holder seen; a live run\n"
    "                            stops before its next write)\n"
    "  scan [--retry]            runs the cron's fallback scan (or its retry scan) now\n"
    "  dlq list                  dead letters: origin, error, value, replay state\n"
    "  dlq replay                sends each letter not replayed yet back to its topic with its\n"
    "                            key; letters the code still cannot read are skipped. Kafka\n"
    "                            cannot delete: vmhctl remembers its place in consumer group\n"
    "                            <KAFKA_GROUP_ID>-dlq-replay. Replay is at-least-once: an\n"
    "                            interrupted replay sends some letters again, which is\n"
    "                            harmless (handling is idempotent)\n"
    "  link <id> <betNr>         uncertain create: a person found the record; link it, resync\n"
    "  create <id>               uncertain create: nothing found; allow one new POST, resync\n"
    "  doctor                    every dependency checked, one line each with what to do\n"
    "  webhooks register [--url URL]\n"
    "                            registers the create/update/delete webhooks at URL (default\n"
    "                            WEBHOOK_PUBLIC_URL) idempotently and prints WEBHOOK_SECRETS\n"
    "                            (the only secret vmhctl ever prints)";

struct command {
    const char *name;
    int min, max; /* arguments after the name; max -1 = any */
    int (*fn)(struct ctl *, int, char **);
};

static const struct command commands[] = {
    {"status", 1, 1, cmd_status},     {"resync", 1, -1, cmd_resync}, {"reset", 1, 1, cmd_reset},
    {"unlock", 1, 1, cmd_unlock},     {"scan", 0, 1, cmd_scan},      {"dlq", 1, 1, cmd_dlq},
    {"link", 2, 2, cmd_link},         {"create", 1, 1, cmd_create},  {"doctor", 0, 0, cmd_doctor},
    {"webhooks", 1, 3, cmd_webhooks},
};

static void usage(FILE *out)
{
    cfg_help(out, "vmhctl [--json] <command> [arguments]", SUMMARY, cfg_vars, CFG_CTL);
}

/* The subcommand's configuration; exits 2 naming the variable. */
static struct cfg *configure(void)
{
    char err[512];
    struct cfg *cfg = NULL;
    enum log_level level;
    if (cfg_load(&cfg, cfg_vars, CFG_CTL, err, sizeof err) != 0) {
        fprintf(stderr, "vmhctl: %s\n", err);
        exit(CTL_USAGE);
    }
    if (phone_set_default_region(cfg_str(cfg, "PHONE_DEFAULT_COUNTRY")) != 0) {
        fprintf(stderr, "vmhctl: PHONE_DEFAULT_COUNTRY: not a country libphonenumber knows "
                        "(ISO 3166 alpha-2, e.g. DE)\n");
        cfg_free(cfg);
        exit(CTL_USAGE);
    }
    st_set_zone(cfg_str(cfg, "ADVOWARE_TZ"));
    /* A tool's stderr is for a person: warnings and worse only, unless debugging. */
    log_level_parse(cfg_str(cfg, "LOG_LEVEL"), &level);
    log_setup(level > LOG_WARN ? level : (level == LOG_DEBUG ? LOG_DEBUG : LOG_WARN), LOG_TEXT, 2);
    return cfg;
}

int main(int argc, char **argv)
{
    bool json = false;
    int n = 0;
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args)
        return CTL_USAGE;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            free(args);
            return CTL_OK;
        }
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            args[n++] = argv[i];
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; n > 0 && i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(args[0], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd || n - 1 < cmd->min || (cmd->max >= 0 && n - 1 > cmd->max)) {
        if (n == 0)
            fprintf(stderr, "vmhctl: a command is needed (see vmhctl --help)\n");
        else if (!cmd)
            fprintf(stderr, "vmhctl: unknown command \"%s\" (see vmhctl --help)\n", args[0]);
        else
            fprintf(stderr, "vmhctl %s: wrong number of arguments (see vmhctl --help)\n",
                    cmd->name);
        free(args);
        return CTL_USAGE;
    }
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2) (redis.h) */
    struct ctl *c = ctl_new(configure(), json, stdout);
    if (!c) {
        free(args);
        return CTL_USAGE;
    }
    int rc = cmd->fn(c, n - 1, args + 1);
    fflush(stdout);
    ctl_free(c);
    free(args);
    return rc;
}
