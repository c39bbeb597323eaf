/* advoware_sim.c: advoware-sim, the Advoware REST API simulator of SPEC §7.2, §8 and §8.1 with
 * the quirks of §5.1 and §5.4: the HMAC-512 token endpoint (nonce and timestamp checks), bearer
 * tokens with a TTL, Beteiligte (PUT applies only the 8 Stammdaten fields, answers an array of
 * one object and always gives a new rowId; DELETE 403), Kommunikationen (GET shows kommKz 0, PUT
 * ignores kommKz, DELETE 403), Rechtsformen, and the /_sim/ admin routes that act as an Advoware
 * user. Built on the shared simulator frame (sim.h): counters, faults, latency, run loop.
 *
 * State lives in memory and is touched only on the loop thread. The sim owns every record: one
 * jansson object per Beteiligter in an array indexed by betNr - 100001 (nothing ever deletes a
 * Beteiligter), each holding its `kommunikation` entries with their true kommKz. Answers are
 * new references handed to httpd_respond_json(), which frees them.
 *
 * Decisions where the SPEC is silent:
 * - POST Beteiligte and POST Kommunikationen answer 200 (not 201), as the Advoware API does.
 * - API DELETE (Beteiligte and Kommunikation) answers 403 whatever the ids: the permission check
 *   comes before the lookup. It still needs a valid token (401 first).
 * - Token: a malformed body (not an object, a field missing or of the wrong type, an unparsable
 *   RequestTimeStamp) is 400; wrong credentials, wrong signature, a replayed nonce or a
 *   RequestTimeStamp more than 5 minutes off is 401. Role and Product must be integers; their
 *   values are not checked (Product is part of the signed message). A timestamp without a zone
 *   is taken as UTC. A nonce is remembered until 5 minutes after its use and after its
 *   RequestTimeStamp, whichever is later (a replay cannot outlive the memory). Tokens expire on
 *   the loop's monotonic clock.
 * - rowId: 20 bytes shown as 40 letters A..P, low nibble first like the seed's example: a change
 *   counter (so every change differs), the betNr or Kommunikation id, a kind byte, and 4 random
 *   bytes drawn anew at start and at every reset (rowIds from before a reset never come back).
 * - Field lengths count Unicode characters, not bytes. `name` is required on POST and may not be
 *   made empty (or blank) by a PUT. An empty rechtsform is allowed, as is null.
 * - Kommunikation: tlf and bemerkung are strings or null, online a boolean or null; a new entry
 *   defaults to tlf "", bemerkung null, online false. kommKz is required (1..12) on every POST,
 *   the user's (/_sim/ui) included.
 * - POST /_sim/ui/Beteiligte also takes an optional "kommunikation" array of entries, so a test
 *   can set up an Advoware-side record in one call. /_sim/ui answers show the true kommKz.
 * - DELETE /_sim/ui/.../Kommunikationen/{id} answers 200 {"deleted": id}. */
#include "log.h"
#include "sim.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PROG "advoware-sim"

#define ADVO_FIRST_BETNR        100001
#define ADVO_FIRST_KOMM_ID      88001
#define ADVO_WINDOW_S           300 /* token RequestTimeStamp tolerance and nonce memory */
#define ADVO_MAX_TOKEN_STR      1024
#define ADVO_ROWID_BYTES        20
#define ADVO_ROWID_LEN          (2 * ADVO_ROWID_BYTES)
#define ADVO_TOKEN_BYTES        32
#define ADVO_KIND_BETEILIGTE    1
#define ADVO_KIND_KOMMUNIKATION 2

#define ROUTE_TOKEN            "/api/v1/Token"
#define ROUTE_BETEILIGTE       "/api/v1/advonet/Beteiligte"
#define ROUTE_BETEILIGTER      "/api/v1/advonet/Beteiligte/{betNr}"
#define ROUTE_RECHTSFORMEN     "/api/v1/advonet/Rechtsformen"
#define ROUTE_KOMMS            "/api/v1/advonet/Beteiligte/{betNr}/Kommunikationen"
#define ROUTE_KOMM             "/api/v1/advonet/Beteiligte/{betNr}/Kommunikationen/{id}"
#define ROUTE_UI_BETEILIGTE    "/_sim/ui/Beteiligte"
#define ROUTE_UI_BETEILIGTER   "/_sim/ui/Beteiligte/{betNr}"
#define ROUTE_UI_KOMMS         "/_sim/ui/Beteiligte/{betNr}/Kommunikationen"
#define ROUTE_UI_KOMM          "/_sim/ui/Beteiligte/{betNr}/Kommunikationen/{id}"
#define ROUTE_STATE_ALL        "/_sim/state/Beteiligte"
#define ROUTE_STATE_ONE        "/_sim/state/Beteiligte/{betNr}"
#define ROUTE_RECHTSFORMEN_SET "/_sim/rechtsformen"

/* Command-line settings (SPEC §8.1 defaults). */
struct advo_sim_conf {
    const char *app_id;
    const char *api_key; /* base64 */
    const char *kanzlei;
    const char *database;
    const char *user;
    const char *password;
    const char *tz;
    int token_ttl_s;
};

struct advo_sim {
    struct advo_sim_conf conf;
    uv_loop_t *loop;
    unsigned char *key; /* the decoded API key: the HMAC key */
    size_t key_len;
    json_t **records; /* records[i] is betNr ADVO_FIRST_BETNR + i */
    size_t nrecords, caprecords;
    json_int_t next_komm_id;
    uint64_t changes; /* counter in every rowId */
    unsigned char epoch[4];
    json_t *tokens;       /* access token -> expiry, uv_now() milliseconds */
    json_t *nonces;       /* nonce -> remembered until, unix seconds */
    json_t *rechtsformen; /* array of strings */
    char *password;       /* the password a token request must carry (--password, or
                             PUT /_sim/password) */
};

/* The 8 fields Advoware's API writes (SPEC §5.1), with their maximum lengths (0: a date). */
struct advo_field {
    const char *name;
    size_t max_chars;
};

static const struct advo_field stamm_fields[] = {
    {"name", 140},  {"vorname", 30},  {"rechtsform", 50}, {"titel", 50},
    {"anrede", 35}, {"bAnrede", 150}, {"zusatz", 100},    {"geburtsdatum", 0},
};
#define N_STAMM (sizeof stamm_fields / sizeof stamm_fields[0])

/* The 6 fields the API reads but never writes; a user can edit them. */
static const char *const other_fields[] = {
    "art", "kurzname", "geburtsname", "familienstand", "handelsRegisterNummer", "registergericht"};
#define N_OTHER (sizeof other_fields / sizeof other_fields[0])

static const char *const default_rechtsformen[] = {"GmbH",
                                                   "AG",
                                                   "KG",
                                                   "OHG",
                                                   "GbR",
                                                   "e.K.",
                                                   "e.V.",
                                                   "UG (haftungsbeschränkt)",
                                                   "GmbH & Co. KG",
                                                   "Einzelunternehmen",
                                                   "Privatperson",
                                                   "Partnerschaft",
                                                   "Stiftung"};

/* ---- pure helpers ------------------------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly `digits` decimal digits at *p and advances; false if they are not there. */
static bool read_digits(const char **p, int digits, int *out)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        if (!is_digit((*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += digits;
    *out = v;
    return true;
}

static bool valid_date(int y, int m, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

/* "YYYY-MM-DDTHH:MM:SS" with optional fraction and zone (Z, +HH:MM, +HHMM, +HH; none = UTC) into
 * unix seconds. 0, or -1 if it is not such a timestamp. */
static int parse_timestamp(const char *s, time_t *out)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, off_h = 0, off_m = 0, sign = 0;
    if (!read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) || *p++ != '-' ||
        !read_digits(&p, 2, &d))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi) || *p++ != ':' ||
        !read_digits(&p, 2, &sec))
        return -1;
    if (*p == '.' || *p == ',') {
        if (!is_digit(*++p))
            return -1;
        while (is_digit(*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!read_digits(&p, 2, &off_h))
            return -1;
        if (*p == ':')
            p++;
        if (*p && !read_digits(&p, 2, &off_m))
            return -1;
    }
    if (*p || !valid_date(y, mo, d) || h > 23 || mi > 59 || sec > 60 || off_h > 23 || off_m > 59)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    *out = timegm(&tm) - sign * (off_h * 3600 + off_m * 60);
    return 0;
}

/* A date as Advoware writes it: "YYYY-MM-DDT00:00:00" with a real date. */
static bool valid_geburtsdatum(const char *s)
{
    const char *p = s;
    int y, m, d;
    return strlen(s) == 19 && read_digits(&p, 4, &y) && *p++ == '-' && read_digits(&p, 2, &m) &&
           *p++ == '-' && read_digits(&p, 2, &d) && strcmp(p, "T00:00:00") == 0 &&
           valid_date(y, m, d);
}

/* Unicode characters of a UTF-8 string (jansson strings are valid UTF-8). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return false;
    return true;
}

/* Parses a path id: decimal digits only, at most 9 of them; -1 otherwise. */
static long parse_id(const char *s)
{
    long v = 0;
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* ---- validation (SPEC §5.1, §7.2) --------------------------------------------------------- */

static bool rechtsform_allowed(const struct advo_sim *a, const char *value)
{
    size_t i;
    json_t *v;
    json_array_foreach(a->rechtsformen, i, v)
    {
        if (strcmp(json_string_value(v), value) == 0)
            return true;
    }
    return false;
}

/* One Stammdaten field present in an API body; false with "<field>: <rule>" in msg. */
static bool stamm_field_valid(const struct advo_sim *a, const struct advo_field *f, const json_t *v,
                              char *msg, size_t msglen)
{
    bool is_name = strcmp(f->name, "name") == 0;
    if (is_name && (!json_is_string(v) || is_blank(json_string_value(v)))) {
        snprintf(msg, msglen, "name: required, a non-empty string");
        return false;
    }
    if (json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        snprintf(msg, msglen, "%s: must be a string or null", f->name);
        return false;
    }
    const char *s = json_string_value(v);
    if (f->max_chars == 0) {
        if (valid_geburtsdatum(s))
            return true;
        snprintf(msg, msglen, "%s: must be YYYY-MM-DDT00:00:00 with a valid date, or null",
                 f->name);
        return false;
    }
    if (utf8_chars(s) > f->max_chars) {
        snprintf(msg, msglen, "%s: longer than %zu characters", f->name, f->max_chars);
        return false;
    }
    if (strcmp(f->name, "rechtsform") == 0 && *s && !rechtsform_allowed(a, s)) {
        snprintf(msg, msglen, "rechtsform: '%s' is not in GET " ROUTE_RECHTSFORMEN, s);
        return false;
    }
    return true;
}

/* Checks the Stammdaten fields of a POST (creating) or PUT body. 0, or -1 with the reason. */
static int stamm_validate(const struct advo_sim *a, const json_t *body, bool creating, char *msg,
                          size_t msglen)
{
    if (creating && !json_object_get(body, "name")) {
        snprintf(msg, msglen, "name: required, a non-empty string");
        return -1;
    }
    for (size_t i = 0; i < N_STAMM; i++) {
        const json_t *v = json_object_get(body, stamm_fields[i].name);
        if (v && !stamm_field_valid(a, &stamm_fields[i], v, msg, msglen))
            return -1;
    }
    return 0;
}

/* A Kommunikation body: tlf, bemerkung string or null; online boolean or null; kommKz 1..12
 * when kz_required, or when present and kz_checked. 0, or -1 with the reason. */
static int komm_validate(const json_t *body, bool kz_required, bool kz_checked, char *msg,
                         size_t msglen)
{
    static const char *const strings[] = {"tlf", "bemerkung"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(body, strings[i]);
        if (v && !json_is_string(v) && !json_is_null(v)) {
            snprintf(msg, msglen, "%s: must be a string or null", strings[i]);
            return -1;
        }
    }
    const json_t *online = json_object_get(body, "online");
    if (online && !json_is_boolean(online) && !json_is_null(online)) {
        snprintf(msg, msglen, "online: must be a boolean or null");
        return -1;
    }
    const json_t *kz = json_object_get(body, "kommKz");
    if ((kz_required && !kz) ||
        (kz && kz_checked &&
         (!json_is_integer(kz) || json_integer_value(kz) < 1 || json_integer_value(kz) > 12))) {
        snprintf(msg, msglen, "kommKz: required, an integer 1..12");
        return -1;
    }
    return 0;
}

/* ---- records ------------------------------------------------------------------------------ */

/* A new rowId: 40 letters A..P (see the header comment); differs on every call. */
static json_t *row_id_new(struct advo_sim *a, json_int_t entity, unsigned char kind)
{
    unsigned char b[ADVO_ROWID_BYTES] = {0};
    char text[ADVO_ROWID_LEN + 1];
    uint64_t change = ++a->changes;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(change >> (8 * i));
    for (int i = 0; i < 4; i++)
        b[8 + i] = (unsigned char)((uint64_t)entity >> (8 * i));
    b[12] = kind;
    memcpy(b + 16, a->epoch, sizeof a->epoch);
    for (int i = 0; i < ADVO_ROWID_BYTES; i++) {
        text[2 * i] = (char)('A' + (b[i] & 0x0F));
        text[2 * i + 1] = (char)('A' + (b[i] >> 4));
    }
    text[ADVO_ROWID_LEN] = '\0';
    return json_string(text);
}

/* A change by anyone: new rowId and geaendertAm (local time, no zone). */
static void beteiligter_touch(struct advo_sim *a, json_t *rec)
{
    char now[32];
    sim_now_local(now, sizeof now);
    json_object_set_new(
        rec, "rowId",
        row_id_new(a, json_integer_value(json_object_get(rec, "betNr")), ADVO_KIND_BETEILIGTE));
    json_object_set_new(rec, "geaendertAm", json_string(now));
}

/* Copies the listed fields present in `from` into `rec`. */
static void fields_apply(json_t *rec, const json_t *from, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(from, names[i]);
        if (v)
            json_object_set(rec, names[i], v);
    }
}

static void stamm_apply(json_t *rec, const json_t *from)
{
    for (size_t i = 0; i < N_STAMM; i++) {
        json_t *v = json_object_get(from, stamm_fields[i].name);
        if (v)
            json_object_set(rec, stamm_fields[i].name, v);
    }
}

/* A new Beteiligter with every field null; stored and owned by the sim. NULL on out of memory. */
static json_t *beteiligter_new(struct advo_sim *a)
{
    if (a->nrecords == a->caprecords) {
        size_t cap = a->caprecords ? 2 * a->caprecords : 256;
        json_t **nr = realloc(a->records, cap * sizeof *nr);
        if (!nr)
            return NULL;
        a->records = nr;
        a->caprecords = cap;
    }
    json_t *rec = json_object();
    if (!rec)
        return NULL;
    json_object_set_new(rec, "betNr", json_integer(ADVO_FIRST_BETNR + (json_int_t)a->nrecords));
    json_object_set_new(rec, "rowId", json_null());
    json_object_set_new(rec, "geaendertAm", json_null());
    for (size_t i = 0; i < N_STAMM; i++)
        json_object_set_new(rec, stamm_fields[i].name, json_null());
    for (size_t i = 0; i < N_OTHER; i++)
        json_object_set_new(rec, other_fields[i], json_null());
    json_object_set_new(rec, "kommunikation", json_array());
    beteiligter_touch(a, rec);
    a->records[a->nrecords++] = rec;
    return rec;
}

static json_t *beteiligter_find(const struct advo_sim *a, const char *betnr_text)
{
    long betnr = parse_id(betnr_text);
    if (betnr < ADVO_FIRST_BETNR || (size_t)(betnr - ADVO_FIRST_BETNR) >= a->nrecords)
        return NULL;
    return a->records[betnr - ADVO_FIRST_BETNR];
}

/* Sets the entry fields present in `from` (kommKz only when take_kz; a null tlf is stored as
 * ""); new entry rowId. */
static void komm_apply(struct advo_sim *a, json_t *entry, const json_t *from, bool take_kz)
{
    static const char *const names[] = {"tlf", "bemerkung"};
    fields_apply(entry, from, names, 2);
    json_t *online = json_object_get(from, "online");
    if (online)
        json_object_set_new(entry, "online", json_boolean(json_is_true(online)));
    json_t *kz = json_object_get(from, "kommKz");
    if (take_kz && kz)
        json_object_set(entry, "kommKz", kz);
    if (json_is_null(json_object_get(entry, "tlf")))
        json_object_set_new(entry, "tlf", json_string(""));
    json_object_set_new(
        entry, "rowId",
        row_id_new(a, json_integer_value(json_object_get(entry, "id")), ADVO_KIND_KOMMUNIKATION));
}

/* Adds a Kommunikation entry (validated body, kommKz included) to the record; the record keeps
 * it. Returns the entry (borrowed). */
static json_t *komm_add(struct advo_sim *a, json_t *rec, const json_t *body)
{
    json_t *entry = json_object();
    json_object_set_new(entry, "id", json_integer(a->next_komm_id++));
    json_object_set_new(entry, "rowId", json_null());
    json_object_set_new(entry, "tlf", json_string(""));
    json_object_set_new(entry, "kommKz", json_integer(0));
    json_object_set_new(entry, "bemerkung", json_null());
    json_object_set_new(entry, "online", json_false());
    komm_apply(a, entry, body, true);
    json_array_append_new(json_object_get(rec, "kommunikation"), entry);
    return entry;
}

/* The entry with this id in the record, and its index; NULL if none. */
static json_t *komm_find(const json_t *rec, const char *id_text, size_t *index)
{
    long id = parse_id(id_text);
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(rec, "kommunikation"), i, entry)
    {
        if (id >= 0 && json_integer_value(json_object_get(entry, "id")) == id) {
            if (index)
                *index = i;
            return entry;
        }
    }
    return NULL;
}

/* An entry as the API shows it: kommKz 0 (the Advoware GET bug). New reference. */
static json_t *komm_api_view(const json_t *entry)
{
    json_t *view = json_copy((json_t *)entry);
    json_object_set_new(view, "kommKz", json_integer(0));
    return view;
}

/* A record as the API shows it: every kommKz 0. New reference; shares the unchanged values. */
static json_t *beteiligter_api_view(const json_t *rec)
{
    json_t *view = json_copy((json_t *)rec);
    json_t *komm = json_array();
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(rec, "kommunikation"), i, entry)
    {
        json_array_append_new(komm, komm_api_view(entry));
    }
    json_object_set_new(view, "kommunikation", komm);
    return view;
}

/* ---- state -------------------------------------------------------------------------------- */

static json_t *rechtsformen_default(void)
{
    json_t *list = json_array();
    for (size_t i = 0; i < sizeof default_rechtsformen / sizeof default_rechtsformen[0]; i++)
        json_array_append_new(list, json_string(default_rechtsformen[i]));
    return list;
}

static void state_clear(struct advo_sim *a)
{
    for (size_t i = 0; i < a->nrecords; i++)
        json_decref(a->records[i]);
    a->nrecords = 0;
    json_object_clear(a->tokens);
    json_object_clear(a->nonces);
    json_decref(a->rechtsformen);
    a->rechtsformen = rechtsformen_default();
    a->next_komm_id = ADVO_FIRST_KOMM_ID;
    a->changes = 0;
    if (RAND_bytes(a->epoch, sizeof a->epoch) != 1)
        memset(a->epoch, 0x5A, sizeof a->epoch);
}

/* The sim frame's POST /_sim/reset hook: back to the state at start. */
static void advo_sim_reset(void *ud)
{
    struct advo_sim *a = ud;
    state_clear(a);
    char *pw = strdup(a->conf.password);
    if (pw) { /* back to --password; issued tokens stay valid, as Advoware's would */
        OPENSSL_clear_free(a->password, a->password ? strlen(a->password) : 0);
        a->password = pw;
    }
}

static void advo_sim_free(struct advo_sim *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nrecords; i++)
        json_decref(a->records[i]);
    free(a->records);
    json_decref(a->tokens);
    json_decref(a->nonces);
    json_decref(a->rechtsformen);
    OPENSSL_clear_free(a->key, a->key_len);
    OPENSSL_clear_free(a->password, a->password ? strlen(a->password) : 0);
    free(a);
}

/* Decodes the base64 API key into a->key. 0, or -1 if it is not base64. */
static int api_key_decode(struct advo_sim *a, const char *b64)
{
    size_t len = strlen(b64);
    int n = 0, tail = 0, rc = -1;
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    a->key = malloc(len / 4 * 3 + 3);
    if (!ctx || !a->key || len == 0 || len > INT32_MAX)
        goto done;
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, a->key, &n, (const unsigned char *)b64, (int)len) < 0 ||
        EVP_DecodeFinal(ctx, a->key + n, &tail) != 1 || n + tail == 0)
        goto done;
    a->key_len = (size_t)(n + tail);
    rc = 0;
done:
    EVP_ENCODE_CTX_free(ctx);
    return rc;
}

/* The simulator with its settings. NULL with a reason in err (bad --api-key, out of memory). */
static struct advo_sim *advo_sim_new(uv_loop_t *loop, const struct advo_sim_conf *conf, char *err,
                                     size_t errlen)
{
    struct advo_sim *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->conf = *conf;
    a->loop = loop;
    a->tokens = json_object();
    a->nonces = json_object();
    if (!a->tokens || !a->nonces) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    if (api_key_decode(a, conf->api_key) != 0) {
        snprintf(err, errlen, "invalid value for --api-key: not base64");
        goto err;
    }
    state_clear(a);
    return a;
err:
    advo_sim_free(a);
    return NULL;
}

/* ---- request helpers ---------------------------------------------------------------------- */

/* The body as a JSON object (new reference) or NULL after answering 400. */
static json_t *body_object(struct httpd_req *req)
{
    json_t *body;
    if (sim_body_json(req, &body, false) != 0)
        return NULL;
    if (!json_is_object(body)) {
        json_decref(body);
        httpd_respond_error(req, 400, "the body must be a JSON object");
        return NULL;
    }
    return body;
}

/* Copies the token of an "Authorization: Bearer <token>" header into buf; false if none. */
static bool bearer_token(const char *header, char *buf, size_t buflen)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return false;
    const char *t = header + 7;
    while (*t == ' ')
        t++;
    size_t n = strcspn(t, " \t\r\n");
    if (n == 0 || n >= buflen)
        return false;
    memcpy(buf, t, n);
    buf[n] = '\0';
    return true;
}

/* True if the request carries a live token; otherwise answers 401 and returns false. */
static bool authorized(struct advo_sim *a, struct httpd_req *req)
{
    char token[256];
    const char *header = httpd_req_header(req, "Authorization");
    if (!header) {
        httpd_respond_error(req, 401, "missing bearer token");
        return false;
    }
    if (!bearer_token(header, token, sizeof token)) {
        httpd_respond_error(req, 401, "invalid Authorization header: expected Bearer <token>");
        return false;
    }
    json_t *expiry = json_object_get(a->tokens, token);
    if (!expiry) {
        httpd_respond_error(req, 401, "invalid token");
        return false;
    }
    if ((json_int_t)uv_now(a->loop) >= json_integer_value(expiry)) {
        json_object_del(a->tokens, token);
        httpd_respond_error(req, 401, "token expired");
        return false;
    }
    return true;
}

/* The record named by {betNr}, or NULL after answering 404. */
static json_t *beteiligter_param(struct advo_sim *a, struct httpd_req *req)
{
    json_t *rec = beteiligter_find(a, httpd_req_param(req, "betNr"));
    if (!rec)
        httpd_respond_error(req, 404, "Beteiligter not found");
    return rec;
}

/* The entry named by {id} in the record, or NULL after answering 404. */
static json_t *komm_param(json_t *rec, struct httpd_req *req, size_t *index)
{
    json_t *entry = komm_find(rec, httpd_req_param(req, "id"), index);
    if (!entry)
        httpd_respond_error(req, 404, "Kommunikation not found");
    return entry;
}

/* ---- POST /api/v1/Token (SPEC §7.2) ------------------------------------------------------- */

struct token_request {
    const char *app_id, *kanzlei, *database, *user, *password, *nonce, *signature, *timestamp;
    json_int_t product;
    time_t when;
};

/* Reads the token body; NULL, or what is wrong with it. */
static const char *token_request_read(const json_t *b, struct token_request *t, char *msg,
                                      size_t msglen)
{
    struct {
        const char *name;
        const char **target;
    } strings[] = {
        {"AppID", &t->app_id},
        {"Kanzlei", &t->kanzlei},
        {"Database", &t->database},
        {"User", &t->user},
        {"Password", &t->password},
        {"Nonce", &t->nonce},
        {"HMAC512Signature", &t->signature},
        {"RequestTimeStamp", &t->timestamp},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const json_t *v = json_object_get(b, strings[i].name);
        if (!json_is_string(v) || json_string_length(v) > ADVO_MAX_TOKEN_STR) {
            snprintf(msg, msglen, "%s: required, a string of at most %d characters",
                     strings[i].name, ADVO_MAX_TOKEN_STR);
            return msg;
        }
        *strings[i].target = json_string_value(v);
    }
    if (!*t->nonce)
        return "Nonce: must not be empty";
    if (!json_is_integer(json_object_get(b, "Role")))
        return "Role: required, an integer";
    if (!json_is_integer(json_object_get(b, "Product")))
        return "Product: required, an integer";
    t->product = json_integer_value(json_object_get(b, "Product"));
    if (parse_timestamp(t->timestamp, &t->when) != 0)
        return "RequestTimeStamp: must be an ISO-8601 timestamp (UTC)";
    return NULL;
}

static bool same_secret(const char *given, const char *expected)
{
    size_t n = strlen(given);
    return n == strlen(expected) && CRYPTO_memcmp(given, expected, n) == 0;
}

static bool token_credentials_match(const struct advo_sim *a, const struct token_request *t)
{
    /* Evaluate all of them: the time taken does not tell which one was wrong. */
    bool ok = same_secret(t->app_id, a->conf.app_id);
    ok &= same_secret(t->kanzlei, a->conf.kanzlei);
    ok &= same_secret(t->database, a->conf.database);
    ok &= same_secret(t->user, a->conf.user);
    ok &= same_secret(t->password, a->password ? a->password : a->conf.password);
    return ok;
}

/* HMAC512Signature == base64(HMAC-SHA512(key, "{Product}:{AppID}:{Nonce}:{RequestTimeStamp}")). */
static bool token_signature_valid(const struct advo_sim *a, const struct token_request *t)
{
    char msg[4 * ADVO_MAX_TOKEN_STR + 64];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    unsigned char expected[4 * EVP_MAX_MD_SIZE / 3 + 4];
    int n = snprintf(msg, sizeof msg, "%" JSON_INTEGER_FORMAT ":%s:%s:%s", t->product, t->app_id,
                     t->nonce, t->timestamp);
    if (n < 0 || (size_t)n >= sizeof msg ||
        !HMAC(EVP_sha512(), a->key, (int)a->key_len, (const unsigned char *)msg, (size_t)n, mac,
              &mac_len))
        return false;
    int elen = EVP_EncodeBlock(expected, mac, (int)mac_len);
    return elen > 0 && same_secret(t->signature, (const char *)expected);
}

/* Forgets nonces whose time has passed. */
static void nonces_prune(struct advo_sim *a, time_t now)
{
    const char *key;
    json_t *until;
    void *tmp;
    json_object_foreach_safe(a->nonces, tmp, key, until)
    {
        if (json_integer_value(until) <= (json_int_t)now)
            json_object_del(a->nonces, key);
    }
}

/* True if the nonce is new; then it is remembered (see the header comment for how long). */
static bool nonce_remember_if_new(struct advo_sim *a, const struct token_request *t, time_t now)
{
    nonces_prune(a, now);
    if (json_object_get(a->nonces, t->nonce))
        return false;
    time_t until = (t->when > now ? t->when : now) + ADVO_WINDOW_S;
    json_object_set_new(a->nonces, t->nonce, json_integer((json_int_t)until));
    return true;
}

static void tokens_prune(struct advo_sim *a)
{
    json_int_t now = (json_int_t)uv_now(a->loop);
    const char *key;
    json_t *expiry;
    void *tmp;
    json_object_foreach_safe(a->tokens, tmp, key, expiry)
    {
        if (json_integer_value(expiry) <= now)
            json_object_del(a->tokens, key);
    }
}

/* A new random access token, valid for --token-ttl-s. */
static void token_issue(struct advo_sim *a, struct httpd_req *req)
{
    unsigned char raw[ADVO_TOKEN_BYTES];
    char token[2 * ADVO_TOKEN_BYTES + 1];
    static const char hex[] = "0123456789abcdef";
    if (RAND_bytes(raw, sizeof raw) != 1) {
        httpd_respond_error(req, 500, "no randomness for a token");
        return;
    }
    for (size_t i = 0; i < sizeof raw; i++) {
        token[2 * i] = hex[raw[i] >> 4];
        token[2 * i + 1] = hex[raw[i] & 0x0F];
    }
    token[sizeof token - 1] = '\0';
    tokens_prune(a);
    json_int_t expiry = (json_int_t)uv_now(a->loop) + (json_int_t)a->conf.token_ttl_s * 1000;
    json_object_set_new(a->tokens, token, json_integer(expiry));
    httpd_respond_json(req, 200,
                       json_pack("{s:s,s:s,s:i}", "access_token", token, "token_type", "bearer",
                                 "expires_in", a->conf.token_ttl_s));
}

static void on_token(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    struct token_request t = {0};
    char msg[256];
    json_t *body = body_object(req);
    if (!body)
        return;
    time_t now = time(NULL);
    const char *bad = token_request_read(body, &t, msg, sizeof msg);
    if (bad)
        httpd_respond_error(req, 400, bad);
    else if (!token_credentials_match(a, &t))
        httpd_respond_error(req, 401, "invalid credentials");
    else if (t.when < now - ADVO_WINDOW_S || t.when > now + ADVO_WINDOW_S)
        httpd_respond_error(req, 401, "RequestTimeStamp is more than 5 minutes off");
    else if (!token_signature_valid(a, &t))
        httpd_respond_error(req, 401, "invalid HMAC512Signature");
    else if (!nonce_remember_if_new(a, &t, now))
        httpd_respond_error(req, 401, "Nonce already used");
    else
        token_issue(a, req);
    json_decref(body);
}

/* ---- Beteiligte API ----------------------------------------------------------------------- */

static void on_beteiligter_get(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    json_t *rec;
    if (!authorized(a, req) || !(rec = beteiligter_param(a, req)))
        return;
    httpd_respond_json(req, 200, beteiligter_api_view(rec));
}

static void on_beteiligte_post(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    char msg[300];
    json_t *body, *rec;
    if (!authorized(a, req) || !(body = body_object(req)))
        return;
    if (stamm_validate(a, body, true, msg, sizeof msg) != 0)
        httpd_respond_error(req, 400, msg);
    else if (!(rec = beteiligter_new(a)))
        httpd_respond_error(req, 500, "out of memory");
    else {
        stamm_apply(rec, body);
        httpd_respond_json(req, 200, beteiligter_api_view(rec));
    }
    json_decref(body);
}

/* PUT: only the 8 fields, present ones only; a new rowId even if nothing changed; an array. */
static void on_beteiligter_put(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    char msg[300];
    json_t *body, *rec;
    if (!authorized(a, req) || !(rec = beteiligter_param(a, req)) || !(body = body_object(req)))
        return;
    if (stamm_validate(a, body, false, msg, sizeof msg) != 0) {
        httpd_respond_error(req, 400, msg);
    } else {
        stamm_apply(rec, body);
        beteiligter_touch(a, rec);
        httpd_respond_json(req, 200, json_pack("[o]", beteiligter_api_view(rec)));
    }
    json_decref(body);
}

static void on_forbidden_delete(struct httpd_req *req, void *ud)
{
    if (authorized(ud, req))
        httpd_respond_error(req, 403, "deleting is not permitted through the API");
}

static void on_rechtsformen_get(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    if (authorized(a, req))
        httpd_respond_json(req, 200, json_incref(a->rechtsformen));
}

/* ---- Kommunikationen API ------------------------------------------------------------------ */

/* POST: kommKz honoured and shown; the Beteiligter's rowId stays. */
static void on_komm_post(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    char msg[200];
    json_t *body, *rec;
    if (!authorized(a, req) || !(rec = beteiligter_param(a, req)) || !(body = body_object(req)))
        return;
    if (komm_validate(body, true, true, msg, sizeof msg) != 0)
        httpd_respond_error(req, 400, msg);
    else
        httpd_respond_json(req, 200, json_incref(komm_add(a, rec, body)));
    json_decref(body);
}

/* PUT: tlf, bemerkung, online; kommKz ignored (and shown as 0); a new entry rowId. */
static void on_komm_put(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    char msg[200];
    json_t *body, *rec, *entry;
    if (!authorized(a, req) || !(rec = beteiligter_param(a, req)) ||
        !(entry = komm_param(rec, req, NULL)) || !(body = body_object(req)))
        return;
    if (komm_validate(body, false, false, msg, sizeof msg) != 0) {
        httpd_respond_error(req, 400, msg);
    } else {
        komm_apply(a, entry, body, false);
        httpd_respond_json(req, 200, komm_api_view(entry));
    }
    json_decref(body);
}

/* ---- /_sim/ admin: acting as an Advoware user (SPEC §8.1) --------------------------------- */

/* Validates an optional "kommunikation" array of a UI create; 0, or -1 with the reason. */
static int ui_komm_list_validate(const json_t *list, char *msg, size_t msglen)
{
    size_t i;
    json_t *entry;
    if (!list)
        return 0;
    if (!json_is_array(list)) {
        snprintf(msg, msglen, "kommunikation: must be an array");
        return -1;
    }
    json_array_foreach(list, i, entry)
    {
        char why[150];
        if (!json_is_object(entry) || komm_validate(entry, true, true, why, sizeof why) != 0) {
            snprintf(msg, msglen, "kommunikation[%zu]: %s", i,
                     json_is_object(entry) ? why : "must be an object");
            return -1;
        }
    }
    return 0;
}

static void on_ui_beteiligte_post(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    char msg[300];
    json_t *body = body_object(req), *rec;
    if (!body)
        return;
    json_t *komm = json_object_get(body, "kommunikation");
    if (ui_komm_list_validate(komm, msg, sizeof msg) != 0) {
        httpd_respond_error(req, 400, msg);
    } else if (!(rec = beteiligter_new(a))) {
        httpd_respond_error(req, 500, "out of memory");
    } else {
        size_t i;
        json_t *entry;
        stamm_apply(rec, body);
        fields_apply(rec, body, other_fields, N_OTHER);
        json_array_foreach(komm, i, entry)
        {
            komm_add(a, rec, entry);
        }
        httpd_respond_json(req, 200, json_incref(rec));
    }
    json_decref(body);
}

static void on_ui_beteiligter_put(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    json_t *rec, *body;
    if (!(rec = beteiligter_param(a, req)) || !(body = body_object(req)))
        return;
    stamm_apply(rec, body);
    fields_apply(rec, body, other_fields, N_OTHER);
    beteiligter_touch(a, rec);
    httpd_respond_json(req, 200, json_incref(rec));
    json_decref(body);
}

static void on_ui_komm_post(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    char msg[200];
    json_t *rec, *body;
    if (!(rec = beteiligter_param(a, req)) || !(body = body_object(req)))
        return;
    if (komm_validate(body, true, true, msg, sizeof msg) != 0)
        httpd_respond_error(req, 400, msg);
    else
        httpd_respond_json(req, 200, json_incref(komm_add(a, rec, body)));
    json_decref(body);
}

/* A user may change the type (kommKz) too. */
static void on_ui_komm_put(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    char msg[200];
    json_t *rec, *entry, *body;
    if (!(rec = beteiligter_param(a, req)) || !(entry = komm_param(rec, req, NULL)) ||
        !(body = body_object(req)))
        return;
    if (komm_validate(body, false, true, msg, sizeof msg) != 0) {
        httpd_respond_error(req, 400, msg);
    } else {
        komm_apply(a, entry, body, true);
        httpd_respond_json(req, 200, json_incref(entry));
    }
    json_decref(body);
}

static void on_ui_komm_delete(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    json_t *rec, *entry;
    size_t index = 0;
    if (!(rec = beteiligter_param(a, req)) || !(entry = komm_param(rec, req, &index)))
        return;
    json_t *answer = json_pack("{s:O}", "deleted", json_object_get(entry, "id"));
    json_array_remove(json_object_get(rec, "kommunikation"), index);
    httpd_respond_json(req, 200, answer);
}

static void on_state_one(struct httpd_req *req, void *ud)
{
    json_t *rec = beteiligter_param(ud, req);
    if (rec)
        httpd_respond_json(req, 200, json_incref(rec));
}

static void on_state_all(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    json_t *all = json_array();
    for (size_t i = 0; i < a->nrecords; i++)
        json_array_append(all, a->records[i]);
    httpd_respond_json(req, 200, all);
}

static void on_rechtsformen_put(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    json_t *list;
    size_t i;
    json_t *v;
    if (sim_body_json(req, &list, false) != 0)
        return;
    bool ok = json_is_array(list);
    json_array_foreach(list, i, v)
    {
        ok &= json_is_string(v);
    }
    if (!ok) {
        json_decref(list);
        httpd_respond_error(req, 400, "the body must be a JSON array of strings");
        return;
    }
    json_decref(a->rechtsformen);
    a->rechtsformen = list;
    httpd_respond_json(req, 200, json_incref(list));
}

/* PUT /_sim/password {"password":"…"}: the firm changed the API user's password (a test of
 * "credentials rejected", SPEC §5.3). Tokens issued before stay valid until they expire. */
static void on_password_put(struct httpd_req *req, void *ud)
{
    struct advo_sim *a = ud;
    json_t *body;
    if (sim_body_json(req, &body, false) != 0)
        return;
    const char *pw = json_string_value(json_object_get(body, "password"));
    char *copy = pw ? strdup(pw) : NULL;
    json_decref(body);
    if (!copy) {
        httpd_respond_error(req, 400, "the body must be {\"password\":\"...\"}");
        return;
    }
    OPENSSL_clear_free(a->password, a->password ? strlen(a->password) : 0);
    a->password = copy;
    httpd_respond_json(req, 200, json_pack("{s:b}", "changed", 1));
}

/* ---- wiring ------------------------------------------------------------------------------- */

static const struct sim_route_def api_routes[] = {
    {"POST", ROUTE_TOKEN, on_token},
    {"POST", ROUTE_BETEILIGTE, on_beteiligte_post},
    {"GET", ROUTE_BETEILIGTER, on_beteiligter_get},
    {"PUT", ROUTE_BETEILIGTER, on_beteiligter_put},
    {"DELETE", ROUTE_BETEILIGTER, on_forbidden_delete},
    {"GET", ROUTE_RECHTSFORMEN, on_rechtsformen_get},
    {"POST", ROUTE_KOMMS, on_komm_post},
    {"PUT", ROUTE_KOMM, on_komm_put},
    {"DELETE", ROUTE_KOMM, on_forbidden_delete},
};

static const struct sim_route_def admin_routes[] = {
    {"POST", ROUTE_UI_BETEILIGTE, on_ui_beteiligte_post},
    {"PUT", ROUTE_UI_BETEILIGTER, on_ui_beteiligter_put},
    {"POST", ROUTE_UI_KOMMS, on_ui_komm_post},
    {"PUT", ROUTE_UI_KOMM, on_ui_komm_put},
    {"DELETE", ROUTE_UI_KOMM, on_ui_komm_delete},
    {"GET", ROUTE_STATE_ALL, on_state_all},
    {"GET", ROUTE_STATE_ONE, on_state_one},
    {"PUT", ROUTE_RECHTSFORMEN_SET, on_rechtsformen_put},
    {"PUT", "/_sim/password", on_password_put},
};

/* geaendertAm is local time of --tz (SPEC §5.2: ADVOWARE_TZ, default Europe/Berlin). */
static void time_zone_set(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

int main(int argc, char **argv)
{
    struct sim_opts opts = {.port = 0, .seed = 1};
    struct advo_sim_conf conf = {
        .app_id = "vmh-dev",
        .api_key = "ZGV2LWFkdm93YXJlLWtleQ==",
        .kanzlei = "dev",
        .database = "dev",
        .user = "dev",
        .password = "dev",
        .tz = "Europe/Berlin",
        .token_ttl_s = 3600,
    };
    const struct sim_opt extra[] = {
        {"app-id", SIM_OPT_STR, &conf.app_id, "AppID a token request must carry"},
        {"api-key", SIM_OPT_STR, &conf.api_key, "base64 HMAC key of the token signature"},
        {"kanzlei", SIM_OPT_STR, &conf.kanzlei, "Kanzlei a token request must carry"},
        {"database", SIM_OPT_STR, &conf.database, "Database a token request must carry"},
        {"user", SIM_OPT_STR, &conf.user, "User a token request must carry"},
        {"password", SIM_OPT_STR, &conf.password, "Password a token request must carry"},
        {"token-ttl-s", SIM_OPT_INT, &conf.token_ttl_s, "lifetime of an access token, seconds"},
        {"tz", SIM_OPT_STR, &conf.tz, "time zone of geaendertAm"},
    };
    char err[200];
    int rc = 1;
    uv_loop_t loop;
    struct advo_sim *a = NULL;
    struct sim *sim = NULL;

    sim_parse_args(argc, argv, PROG,
                   "Simulates the Advoware REST API (SPEC §7.2, §8.1) in memory: token endpoint,\n"
                   "Beteiligte, Kommunikationen, Rechtsformen, with Advoware's quirks.",
                   &opts, extra, sizeof extra / sizeof extra[0]);
    if (conf.token_ttl_s < 1) {
        fprintf(stderr, PROG ": invalid value for --token-ttl-s: must be at least 1\n");
        return 2;
    }
    time_zone_set(conf.tz);
    if (uv_loop_init(&loop) != 0) {
        log_error(PROG ": cannot create the event loop");
        return 1;
    }
    if (!(a = advo_sim_new(&loop, &conf, err, sizeof err))) {
        fprintf(stderr, PROG ": %s\n", err);
        rc = 2;
        goto close_loop;
    }
    if (!(sim = sim_new(&loop, &opts, advo_sim_reset, a)) ||
        sim_register_routes(sim, api_routes, sizeof api_routes / sizeof api_routes[0], admin_routes,
                            sizeof admin_routes / sizeof admin_routes[0], a) != 0) {
        log_error(PROG ": cannot set up the server");
        goto free_sim;
    }
    rc = sim_run(sim);
free_sim:
    sim_free(sim);
    advo_sim_free(a);
close_loop:
    uv_loop_close(&loop);
    return rc;
}
