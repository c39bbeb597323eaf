/* komm.h: the Kommunikation sync's decisions (SPEC §5.4), pure functions: the kommKz table and
 * its EspoCRM phone types, value comparison (phones by their E.164 form, common/phone.h) and the
 * value heuristic, what EspoCRM accepts, validation of values written to Advoware, the
 * kommunikationHash, and the planner that turns both sides' entries into actions.
 *
 * The planner never calls anything. kommsync.c runs its Advoware actions, folds its EspoCRM
 * actions into the run's final PUT, and reports. Phone numbers are read with the process's
 * default region (phone_default_region()). */
#ifndef VMH_KOMM_H
#define VMH_KOMM_H

#include <stdbool.h>
#include <stddef.h>

enum komm_class { KOMM_PHONE, KOMM_EMAIL };

/* ---- the kommKz table ---------------------------------------------------------------------- */

#define KOMM_KZ_MAX 12

/* Advoware's name of kz ("TelGesch", ...), NULL if kz is not 1..12. */
const char *komm_kz_name(int kz);
/* KOMM_PHONE or KOMM_EMAIL; -1 if kz is not 1..12. */
int komm_kz_class(int kz);
/* The EspoCRM phone type of kz (Office, Fax, Mobile, Home, Other); NULL for e-mails. */
const char *komm_kz_type(int kz);
/* The kommKz a new EspoCRM item gets: e-mail 4; Office 1, Fax 2, Mobile 3, Home 6, Other (and
 * any type EspoCRM may add) 10. */
int komm_kz_for(enum komm_class cls, const char *type);
/* Whether an Advoware entry of kz can hold an EspoCRM item of cls/type (FaxPrivat holds a Fax,
 * every e-mail kz an e-mail). A NULL phone type fits every phone kz. Uses the full type list
 * (Home exists); the planner uses komm_kz_espo_type() of the entity's list. */
bool komm_kz_fits(int kz, enum komm_class cls, const char *type);
/* The phone type kz shows as in an entity whose type list is types (n of them) with default
 * type dflt: the first type of kz's preference the list has (1 Office, 2 Fax, 3 Mobile, 6 Home
 * else Other, 7 Fax, 9 Other, 10 Other), else dflt (NULL: the list's first, else "Office"). An
 * empty or NULL list is the Company list: Office, Mobile, Fax, Other, default Office. NULL for
 * e-mails. The result points into types, at dflt or at static storage. */
const char *komm_kz_espo_type(int kz, const char *const *types, size_t n, const char *dflt);
/* kommKz of an unmarked Advoware entry whose GET said 0: '@' → 4, "http"/"www." → 5, else 1. */
int komm_kz_guess(const char *value);

/* ---- values ------------------------------------------------------------------------------ */

/* At most this many phone numbers per party (EspoCRM's phoneNumberMaxCount, recorded 03_...). */
#define KOMM_PHONE_MAX 10

/* Equal as values: phones by their E.164 form (phone_eq), e-mails trimmed and ignoring ASCII
 * case. NULL counts as "". */
bool komm_value_eq(const char *a, const char *b, enum komm_class cls);
/* The form komm_value_eq compares: a phone's E.164 form (else the value trimmed), an e-mail
 * trimmed in lower case. malloc'd; NULL when out of memory. */
char *komm_value_key(const char *value, enum komm_class cls);
/* The value EspoCRM would store for value, or NULL when EspoCRM rejects it (SPEC §5.4): a phone
 * that no rule makes international or that EspoCRM's validation refuses → NULL, else its E.164
 * form; an e-mail that is no address (or not ASCII) → NULL, else trimmed. Also NULL when out of
 * memory. malloc'd. */
char *komm_espo_value(const char *value, enum komm_class cls);
/* s without leading and trailing blanks, malloc'd (NULL: out of memory). */
char *komm_trim(const char *s);
/* Validation of a value about to be written to Advoware (SPEC §5.1): e-mail syntax, phone
 * characters. 0, or -1 with msg naming the value and the rule. */
int komm_check_value(enum komm_class cls, const char *value, char *msg, size_t msglen);

/* kommunikationHash: the first 16 hex digits of MD5 over the sorted rowIds, concatenated.
 * Sorts rowids in place. out has 17 bytes. 0, or -1 when out of memory. */
int komm_hash(const char **rowids, size_t n, char out[17]);

/* ---- the planner --------------------------------------------------------------------------- */

struct komm_espo {     /* one EspoCRM phone or e-mail item */
    const char *value; /* as stored (compared trimmed) */
    enum komm_class cls;
    const char *type; /* phone type; NULL for e-mails */
};

struct komm_advo {   /* one Advoware Kommunikation entry as its GET shows it */
    const char *tlf; /* NULL = "" */
    int kz;          /* kommKz of the GET (0: Advoware's bug; the marker knows) */
    const char *bemerkung;
    long long id; /* Advoware's entry id (0: unknown) */
};

/* One entry of the baseline (SPEC §5.2 "komm"): Advoware entry `id` and EspoCRM held `value`
 * after the last successful run. */
struct komm_base {
    long long id;
    int kz;
    const char *value;
    enum komm_class cls;
};

enum komm_dir { KOMM_BOTH, KOMM_TO_ADVOWARE /* a conflict: EspoCRM wins everything */ };

struct komm_in {
    const struct komm_espo *espo;
    size_t nespo;
    const struct komm_advo *advo;
    size_t nadvo;
    bool initial;      /* no kommunikationHash yet */
    bool espo_changed; /* EspoCRM changed since the last sync (SPEC §5.2) */
    bool advo_changed; /* the hash of Advoware's rowIds differs from the stored one */
    enum komm_dir dir;
    /* The entity's phone types (metadata typeList, defaultType); NULL/0: the Company list. They
     * must outlive the plan (its actions point into them). */
    const char *const *phone_types;
    size_t nphone_types;
    const char *default_type;
    /* The baseline's entries (SPEC §5.2, §5.4). has_base: the baseline lists the entries (it
     * may list none); then the plan decides per entry against it, and initial, espo_changed,
     * advo_changed and dir do not matter (advo_changed still lets the skip rule plan).
     * Without: the marker steps of §5.4, as written. */
    const struct komm_base *base;
    size_t nbase;
    bool has_base;
};

/* Var1..Var6 of SPEC §5.4, and the marker-only pairing of equal values (KVAR_MATCH). */
enum komm_var { KVAR_1 = 1, KVAR_2, KVAR_3, KVAR_4, KVAR_5, KVAR_6, KVAR_MATCH, KVAR_N };

enum komm_op {
    KOP_ADVO_POST,   /* POST a new entry: tlf, kz, bemerkung, online true */
    KOP_ADVO_PUT,    /* PUT entry `advo`: tlf, bemerkung, online unless -1 */
    KOP_ESPO_ADD,    /* add value (cls, type) to EspoCRM */
    KOP_ESPO_SET,    /* EspoCRM item `espo` gets value */
    KOP_ESPO_REMOVE, /* EspoCRM item `espo` goes */
    KOP_NOTIFY,      /* tell the user `value` (a type change Advoware cannot make) */
    KOP_SKIP,        /* Advoware entry `advo` is not taken over; `value` tells the user why */
    KOP_CONFLICT,    /* the same entry changed on both sides: EspoCRM won; `value` is the
                        notification naming the overwritten Advoware value */
};

struct komm_action {
    enum komm_op op;
    enum komm_var var;
    size_t advo;     /* KOP_ADVO_PUT: index into komm_in.advo; KOP_ESPO_ADD, KOP_SKIP,
                        KOP_NOTIFY, KOP_CONFLICT: the entry it is about */
    size_t espo;     /* KOP_ESPO_SET, KOP_ESPO_REMOVE: index into komm_in.espo; Var1's
                        KOP_ADVO_POST and KOP_ADVO_PUT (a slot): the item it comes from */
    int kz;          /* KOP_ADVO_POST: the kommKz */
    char *tlf;       /* KOP_ADVO_*: the value written */
    char *bemerkung; /* KOP_ADVO_*: marker and the user's text */
    int online;      /* KOP_ADVO_*: 1, 0, or -1 = not sent */
    bool from_espo;  /* KOP_ADVO_*: tlf is an EspoCRM value (validate before writing) */
    char *value;     /* KOP_ESPO_ADD, KOP_ESPO_SET: the value (a phone's E.164 form);
                        KOP_ADVO_POST: the value EspoCRM holds (the new entry's baseline);
                        KOP_NOTIFY, KOP_SKIP, KOP_CONFLICT: the text */
    enum komm_class cls;
    const char *type; /* KOP_ESPO_ADD: phone type (komm_kz_espo_type), NULL for e-mails */
    int after;        /* EspoCRM actions: index of the Advoware action that must succeed
                         first (its other half), -1 if none */
};

struct komm_plan {
    struct komm_action *a;
    size_t n, cap;
    bool deferred; /* to_advoware left Advoware-side news for a later run: keep the old hash,
                      so that run plans again */
    /* What both systems hold once every action succeeded, per Advoware entry (komm_in.advo):
     * agreed[i] the value EspoCRM holds for entry i (NULL: none, e.g. a slot, a skipped or web
     * entry), agreed_kz[i] its kommKz. POSTed entries: their action's value and kz. The next
     * baseline's "komm". */
    char **agreed;
    int *agreed_kz;
    bool *holds; /* agreed[i] is EspoCRM's value already (no EspoCRM half waits) */
    size_t nagreed;
    /* Per Advoware entry (nagreed of them): the EspoCRM item it was paired with (index into
     * komm_in.espo), -1 when none. For showing the plan entry by entry (vmhctl status). */
    int *paired;
};

/* Whether anything needs planning: the skip rule of SPEC §5.4 (not initial, EspoCRM unchanged,
 * hash equal → nothing). With a baseline, "EspoCRM unchanged" is decided by values: EspoCRM's
 * items are the baseline's (by value and class, each phone's type fitting its kommKz). */
bool komm_needs_plan(const struct komm_in *in);

/* The actions for in, in execution order. 0, or -1 when out of memory (plan empty).
 *
 * An Advoware entry EspoCRM cannot take (komm_espo_value() NULL, or an 11th phone number) is
 * never sent to EspoCRM and never written in Advoware (no marker: a marker whose value EspoCRM
 * lacks would later read as a deletion); the plan reports it as a KOP_SKIP. A web address
 * (kz 5 "Internet", "www."/"http") stays in Advoware only, unreported. */
int komm_plan_make(const struct komm_in *in, struct komm_plan *plan);
void komm_plan_free(struct komm_plan *plan);

/* Checks every value the plan writes from EspoCRM to Advoware. 0, or -1 with msg. */
int komm_plan_validate(const struct komm_plan *plan, char *msg, size_t msglen);
/* "Var1", ..., "Var6", "Match". */
const char *komm_var_name(enum komm_var v);

#endif
