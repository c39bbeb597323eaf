/* cfg.h: configuration from environment variables (SPEC §9).
 *
 * Every variable of the project is described once, in the table of cfg_vars.c; each binary
 * loads the rows it uses (a bit mask) and `--help` is generated from the same rows. Every X
 * may come as X_FILE instead (a path; the file's content with its trailing newline stripped).
 * Values are validated at load time, so the typed getters below never fail for a loaded
 * variable. A struct cfg owns copies of every value; cfg_free() releases them. */
#ifndef VMH_CFG_H
#define VMH_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Which binary uses a variable. */
enum cfg_user {
    CFG_PRODUCER = 1u << 0,
    CFG_WORKER = 1u << 1,
    CFG_CTL = 1u << 2,
};

enum cfg_type {
    CFG_STR,       /* any non-empty string */
    CFG_INT,       /* decimal integer in [min, max] */
    CFG_BOOL,      /* 1/0, true/false, yes/no, on/off */
    CFG_DURATION,  /* number in the unit the name ends in (_MS or _S), or with a suffix
                      ms/s/m/h; kept in milliseconds; range [min, max] in ms */
    CFG_HOSTPORT,  /* host:port, port 0..65535 */
    CFG_DOUBLE,    /* decimal number in [min, max] */
    CFG_ENUM,      /* one of `choices` ("json|text"), case-insensitive */
    CFG_DURATIONS, /* a comma-separated list of 1..CFG_DURATIONS_MAX durations ("1m,5m,15m"),
                      each as CFG_DURATION, each in [min, max] ms */
    CFG_URL,       /* an http:// or https:// URL with a host (parsed by libcurl) */
    CFG_BASE64,    /* strict base64 (standard alphabet, padded) of at least one byte */
};

#define CFG_DURATIONS_MAX 16

struct cfg_def {
    const char *name;
    enum cfg_type type;
    const char *def; /* default as text; NULL = none */
    bool required;   /* no default and missing → error */
    bool secret;     /* never printed (help shows "(secret)") */
    long long min, max;
    unsigned users; /* enum cfg_user bits */
    const char *help;
    const char *choices; /* CFG_ENUM only */
};

/* The project's table (cfg_vars.c), terminated by a row with name == NULL. */
extern const struct cfg_def cfg_vars[];

struct cfg;

/* Loads every row of `defs` whose users intersect `users`, from the process environment.
 * On success returns 0 and *out (free with cfg_free). On the first missing or invalid value
 * returns -1, *out = NULL, and err holds one line naming the variable. A KAFKA_CFG_* variable
 * that would change a setting the design fixes (SPEC §1.1, §2: kafka_fixed_setting) is such an
 * invalid value too. */
int cfg_load(struct cfg **out, const struct cfg_def *defs, unsigned users, char *err,
             size_t errlen);
void cfg_free(struct cfg *cfg);

/* Getters for a loaded variable. Asking for a name not loaded is a programming error: it
 * aborts with a message. cfg_str returns NULL for an optional string with no value; the
 * pointer lives as long as cfg. */
const char *cfg_str(const struct cfg *cfg, const char *name);
long long cfg_int(const struct cfg *cfg, const char *name); /* CFG_ENUM: index of the choice */
bool cfg_bool(const struct cfg *cfg, const char *name);
long long cfg_duration_ms(const struct cfg *cfg, const char *name);
double cfg_double(const struct cfg *cfg, const char *name);
/* CFG_DURATIONS: the durations in ms into out (at most max); returns how many. */
size_t cfg_durations_ms(const struct cfg *cfg, const char *name, long long *out, size_t max);
/* host into a buffer (truncation is an error: -1), port into *port. 0 on success. */
int cfg_hostport(const struct cfg *cfg, const char *name, char *host, size_t hostlen, int *port);

/* Parses "host:port" (host may be "[v6]"). 0 on success, -1 if malformed. */
int cfg_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/* Writes the usage text: summary, then every variable the binary uses with its default. */
void cfg_help(FILE *out, const char *prog, const char *summary, const struct cfg_def *defs,
              unsigned users);

/* For main(): handles `--help`/`-h` (prints help, exit 0), any other argument (exit 2), loads
 * the configuration and on error prints "<prog>: <error>" on stderr and exits 2. */
struct cfg *cfg_load_or_exit(int argc, char **argv, const char *summary, unsigned users);

/* Calls fn(name, value, ud) for every environment variable KAFKA_CFG_<NAME>, with <NAME>
 * lowercased and '_' turned into '.' (KAFKA_CFG_SECURITY_PROTOCOL → security.protocol).
 * KAFKA_CFG_<NAME>_FILE is honoured like every X_FILE. Stops at and returns the first
 * non-zero return of fn; -1 with err set if a _FILE cannot be read. */
int cfg_foreach_kafka(int (*fn)(const char *name, const char *value, void *ud), void *ud, char *err,
                      size_t errlen);

#endif
