/* fault_matrix.h: the fault-point matrix of issue 13 (SPEC §5.3 "Writes in a safe order, nothing
 * lost on any failure"). For every scenario of a table and every API call its sync run makes
 * (k = 1 … n, counted from the simulators' call logs in a fault-free reference run; token calls
 * and 401s left out), the scenario runs again with exactly that call failing in each way: 503;
 * applied + 503; applied + no answer; the worker killed (SIGKILL) right after the answer; and for
 * the final EspoCRM PUT a person's edit landing just before it (the genuine 409). Then the system
 * recovers as in production (a killed worker restarts and Kafka redelivers, the cron's retry scan
 * and fallback scan send sync_check, a person resolves an uncertain create, a final resync) and
 * every cell is checked: both systems equal (8 fields; every Kommunikation entry's value, type and
 * marker; slots empty with a slot marker), every person's edit present (EspoCRM's value where
 * both sides edited the same field or entry, with a notification naming the Advoware value), one
 * Advoware record, no duplicated entry, no false conflict notification, syncStatus clean.
 *
 * One stack per executable (a scenario family): kafka-mock, redis-server, espocrm-sim,
 * advoware-sim, vmh-producer and one vmh-worker (so the pid to kill is known), all on free
 * loopback ports; both simulators and Redis are reset between cells. Each cell prints one line
 * (scenario × call k (METHOD route) × fault → ok, or what differed); a scenario's cmocka test
 * fails when one of its cells failed. Cells never abort the run: only a broken stack does. */
#ifndef VMH_FAULT_MATRIX_H
#define VMH_FAULT_MATRIX_H

#include <stdbool.h>
#include <stddef.h>

/* What a person does, in EspoCRM's UI or in Advoware. */
enum fm_op_kind {
    FM_END = 0,     /* the end of a list */
    FM_ESPO,        /* EspoCRM: update the party with body (attributes) */
    FM_ADVO_FIELDS, /* Advoware: edit the record's fields (body) */
    FM_ADVO_ADD,    /* Advoware: add an entry (body: {tlf,kommKz,bemerkung}) */
    FM_ADVO_SET,    /* Advoware: edit the entry whose tlf is `entry` (body: its new values) */
    FM_ADVO_DELETE, /* Advoware: delete the entry whose tlf is `entry` */
};

struct fm_op {
    enum fm_op_kind kind;
    const char *entry; /* FM_ADVO_SET, FM_ADVO_DELETE: the entry's tlf as stored ("" = a slot) */
    const char *body;  /* JSON */
};

#define FM_MAX_OPS 4

/* The party most scenarios start from: the 8 fields, an office and a mobile number, an e-mail
 * address (as a UI user types them; Advoware gets the numbers as "+49 511 1234567"). */
#define FM_P1    "+49 511 1234567"
#define FM_P1_E  "+495111234567"
#define FM_M1    "+49 170 1234567"
#define FM_M1_E  "+491701234567"
#define FM_MAIL1 "info@matrix-kanzlei.de"
#define FM_PHONES                                                                                  \
    "[{\"phoneNumber\":\"" FM_P1 "\",\"type\":\"Office\",\"primary\":true},"                       \
    "{\"phoneNumber\":\"" FM_M1 "\",\"type\":\"Mobile\",\"primary\":false}]"
#define FM_BASE                                                                                    \
    "{\"name\":\"Matrix GmbH\",\"vorname\":\"Vera\",\"titel\":\"Dr.\",\"anrede\":\"Frau\","        \
    "\"bAnrede\":\"Sehr geehrte Frau Dr.\",\"zusatz\":\"Basis\",\"dateOfBirth\":\"1980-02-03\","   \
    "\"phoneNumberData\":" FM_PHONES ",\"emailAddressData\":[{\"emailAddress\":\"" FM_MAIL1        \
    "\",\"primary\":true}]}"
/* What EspoCRM holds of it. */
#define FM_BASE_PHONES "{\"" FM_P1_E "\":\"Office\",\"" FM_M1_E "\":\"Mobile\"}"
#define FM_BASE_EMAILS "[\"" FM_MAIL1 "\"]"

/* A later edit (fm_scenario.later) of a field no scenario edits otherwise, and what it makes. */
#define FM_LATER                                                                                   \
    {                                                                                              \
        {                                                                                          \
            FM_ADVO_FIELDS, NULL, "{\"zusatz\":\"Spaeter\"}"                                       \
        }                                                                                          \
    }
#define FM_LATER_FIELDS "{\"zusatz\":\"Spaeter\"}"

/* The state every cell must end in, besides the invariants. */
struct fm_expect {
    const char *fields;   /* JSON object: EspoCRM attributes the party must have */
    const char *phones;   /* JSON object: every phone number of the party (E.164) → its type */
    const char *emails;   /* JSON array: every e-mail address of the party */
    int entries;          /* Advoware Kommunikation entries in all, slots included */
    int slots;            /* of them, empty slots */
    const char *skipped;  /* an Advoware value EspoCRM cannot take: stays untouched in Advoware,
                             named in syncErrorMessage */
    const char *conflict; /* the Advoware value a conflict overwrote (NULL: no conflict) */
    bool slot_reused;     /* the new entry took the starting state's slot (same entry id) */
    const char *later_fields; /* JSON object: EspoCRM attributes the later edits made (checked
                                 when they were made) */
};

struct fm_scenario {
    const char *name;
    const char *base;                 /* the party, as a UI user creates it */
    bool create;                      /* the run under test is the creation itself */
    struct fm_op prepare[FM_MAX_OPS]; /* more of the starting state, each synced to clean */
    struct fm_op edits[FM_MAX_OPS];   /* what people do before the run under test (Advoware
                                         first, then EspoCRM, whose webhook starts the run; else
                                         the cron's stale_clean check starts it) */
    struct fm_op later[FM_MAX_OPS];   /* Advoware edits after the run under test ended, failed
                                         or not, before the recovery: made once the party's
                                         betNr is known (EspoCRM's, else the link's) */
    struct fm_expect expect;
};

/* cmocka group setup and teardown: start and stop the stack (teardown prints the family's
 * summary: cells, failed, wall time). */
int fm_setup(void **state);
int fm_teardown(void **state);

/* Runs the scenario's reference and every cell of its matrix, printing one line per cell; fails
 * the running cmocka test when a cell failed. */
void fm_run_scenario(const struct fm_scenario *sc);

/* The family's name in the output (set before cmocka_run_group_tests). */
extern const char *fm_family;

#endif
