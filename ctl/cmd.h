/* cmd.h: vmhctl's subcommands (SPEC §11), one function each, in the cmd_*.c files: they take the
 * context and the subcommand's own arguments (argv[0] is the first argument after the
 * subcommand's name) and return the exit code (CTL_OK, CTL_PROBLEM, CTL_USAGE). */
#ifndef VMH_CMD_H
#define VMH_CMD_H

#include "ctl.h"

/* cmd_status.c: the status fields, lock, link, marks and the next run's plan of one party. */
int cmd_status(struct ctl *c, int argc, char **argv);

/* cmd_party.c: one party's levers. */
int cmd_resync(struct ctl *c, int argc, char **argv);
int cmd_reset(struct ctl *c, int argc, char **argv);
int cmd_unlock(struct ctl *c, int argc, char **argv);
int cmd_link(struct ctl *c, int argc, char **argv);
int cmd_create(struct ctl *c, int argc, char **argv);

/* cmd_scan.c: the cron scan, now. */
int cmd_scan(struct ctl *c, int argc, char **argv);

/* cmd_dlq.c: dlq list | dlq replay. */
int cmd_dlq(struct ctl *c, int argc, char **argv);

/* cmd_doctor.c: every dependency, one line each. */
int cmd_doctor(struct ctl *c, int argc, char **argv);

/* cmd_webhooks.c: webhooks register [--url URL]. */
int cmd_webhooks(struct ctl *c, int argc, char **argv);

/* cmd_party.c: sends a sync_check (source cli) for each of ids, keyed and partitioned as
 * vmh-producer does, and waits for Kafka's acknowledgements; fills sent (may be NULL) with one
 * {"id","topic","acknowledged","error"} per id. The number not acknowledged, or -1 with err when
 * the producer could not be made or an id cannot be encoded. */
int cmd_send_resync(struct ctl *c, char **ids, int n, json_t *sent, char *err, size_t errlen);

#endif
