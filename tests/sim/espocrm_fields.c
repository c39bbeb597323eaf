/* espocrm_fields.c: CBeteiligte's attributes and fields as EspoCRM 9.1.5 defines them (SPEC §7.1,
 * §8.1; recordings 02, 03, 12 of tests/contract/espocrm-9.1.5): the recorded entityDefs, which
 * attributes a write takes, EspoCRM's sanitising and field validation, and the stored form of
 * phone and e-mail lists. Returned JSON is new; the caller frees it.
 *
 * What EspoCRM does, as recorded:
 * - Phones (02 steps 0-6, 03 steps 1-7): a number is sanitised (a leading '+' number in E.164)
 *   and must then be valid, else 400 for the whole request; the type must be in the template's
 *   list (Company: Office, Mobile, Fax, Other; Person adds Home), missing = the default type;
 *   at most 10 (maxCount); the primary item comes first, none marked = the first; optOut and
 *   invalid default to false on every write (03 steps 16-19). E-mails: syntax checked (03 step
 *   8), `lower` added. A plain phoneNumber/emailAddress creates a one-item list (02 step 6).
 * - Validation (03 steps 9-15): maxLength, required, enum options, pattern $noBadCharacters,
 *   in field order; 400 {"messageTranslation":{"label":"validationFailure","scope":null,
 *   "data":{"field","type"}}} with X-Status-Reason "Field validation failure; entityType: …".
 *   Unknown attributes are ignored (03 step 13).
 *
 * Not recorded, assumed (EspoCRM's documented behaviour): datetime, date and int values are
 * format-checked ("valid"); the Person template changes only the phone type list (not the name
 * fields). */
#include "espocrm_sim.h"
#include "phone.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHONE_MAX_COUNT 10 /* phoneNumberMaxCount (03 steps 6, 7) */

static const char ENTITY_DEFS_JSON[] =
    "{\"fields\":{\"name\":{\"type\":\"varchar\",\"required\":true,\"pattern\":\"$noBadCharacte"
    "rs\"},\"description\":{\"type\":\"text\"},\"website\":{\"type\":\"url\",\"strip\":true},\""
    "emailAddress\":{\"type\":\"email\"},\"phoneNumber\":{\"type\":\"phone\",\"typeList\":[\"Of"
    "fice\",\"Mobile\",\"Fax\",\"Other\"],\"defaultType\":\"Office\"},\"billingAddress\":{\"typ"
    "e\":\"address\"},\"billingAddressStreet\":{\"type\":\"text\",\"maxLength\":255,\"dbType\":"
    "\"varchar\"},\"billingAddressCity\":{\"type\":\"varchar\",\"maxLength\":100,\"view\":\"vie"
    "ws/fields/address-city\",\"customizationOptionsDisabled\":true,\"customizationOptionsRefer"
    "enceDisabled\":true,\"pattern\":\"$noBadCharacters\"},\"billingAddressState\":{\"type\":\""
    "varchar\",\"maxLength\":100,\"view\":\"views/fields/address-state\",\"customizationOptions"
    "Disabled\":true,\"customizationOptionsReferenceDisabled\":true,\"pattern\":\"$noBadCharact"
    "ers\"},\"billingAddressCountry\":{\"type\":\"varchar\",\"maxLength\":100,\"view\":\"views/"
    "fields/address-country\",\"customizationOptionsDisabled\":true,\"customizationOptionsRefer"
    "enceDisabled\":true,\"pattern\":\"$noBadCharacters\"},\"billingAddressPostalCode\":{\"type"
    "\":\"varchar\",\"maxLength\":40,\"pattern\":\"$noBadCharacters\"},\"shippingAddress\":{\"t"
    "ype\":\"address\",\"view\":\"crm:views/account/fields/shipping-address\"},\"shippingAddres"
    "sStreet\":{\"type\":\"text\",\"maxLength\":255,\"dbType\":\"varchar\"},\"shippingAddressCi"
    "ty\":{\"type\":\"varchar\",\"maxLength\":100,\"view\":\"views/fields/address-city\",\"cust"
    "omizationOptionsDisabled\":true,\"customizationOptionsReferenceDisabled\":true,\"pattern\""
    ":\"$noBadCharacters\"},\"shippingAddressState\":{\"type\":\"varchar\",\"maxLength\":100,\""
    "view\":\"views/fields/address-state\",\"customizationOptionsDisabled\":true,\"customizatio"
    "nOptionsReferenceDisabled\":true,\"pattern\":\"$noBadCharacters\"},\"shippingAddressCountr"
    "y\":{\"type\":\"varchar\",\"maxLength\":100,\"view\":\"views/fields/address-country\",\"cu"
    "stomizationOptionsDisabled\":true,\"customizationOptionsReferenceDisabled\":true,\"pattern"
    "\":\"$noBadCharacters\"},\"shippingAddressPostalCode\":{\"type\":\"varchar\",\"maxLength\""
    ":40,\"pattern\":\"$noBadCharacters\"},\"createdAt\":{\"type\":\"datetime\",\"readOnly\":tr"
    "ue},\"modifiedAt\":{\"type\":\"datetime\",\"readOnly\":true},\"createdBy\":{\"type\":\"lin"
    "k\",\"readOnly\":true,\"view\":\"views/fields/user\"},\"modifiedBy\":{\"type\":\"link\",\""
    "readOnly\":true,\"view\":\"views/fields/user\"},\"assignedUser\":{\"type\":\"link\",\"requ"
    "ired\":false,\"view\":\"views/fields/assigned-user\"},\"teams\":{\"type\":\"linkMultiple\""
    ",\"view\":\"views/fields/teams\"},\"vorname\":{\"type\":\"varchar\",\"maxLength\":30,\"isC"
    "ustom\":true},\"rechtsform\":{\"type\":\"varchar\",\"maxLength\":50,\"isCustom\":true},\"t"
    "itel\":{\"type\":\"varchar\",\"maxLength\":50,\"isCustom\":true},\"anrede\":{\"type\":\"va"
    "rchar\",\"maxLength\":35,\"isCustom\":true},\"bAnrede\":{\"type\":\"varchar\",\"maxLength"
    "\":150,\"isCustom\":true},\"zusatz\":{\"type\":\"varchar\",\"maxLength\":100,\"isCustom\":"
    "true},\"dateOfBirth\":{\"notNull\":false,\"type\":\"date\",\"isCustom\":true},\"betnr\":{"
    "\"type\":\"int\",\"isCustom\":true},\"advowareRowId\":{\"type\":\"varchar\",\"maxLength\":"
    "255,\"isCustom\":true},\"advowareLastSync\":{\"notNull\":false,\"type\":\"datetime\",\"isC"
    "ustom\":true},\"syncStatus\":{\"type\":\"enum\",\"options\":[\"pending_sync\",\"dirty\",\""
    "syncing\",\"clean\",\"failed\",\"permanently_failed\",\"deleted_in_advoware\"],\"default\""
    ":\"pending_sync\",\"maxLength\":100,\"isCustom\":true},\"syncRetryCount\":{\"type\":\"int"
    "\",\"isCustom\":true},\"syncNextRetry\":{\"notNull\":false,\"type\":\"datetime\",\"isCusto"
    "m\":true},\"syncAutoResetAt\":{\"notNull\":false,\"type\":\"datetime\",\"isCustom\":true},"
    "\"syncErrorMessage\":{\"type\":\"text\",\"isCustom\":true},\"kommunikationHash\":{\"type\""
    ":\"varchar\",\"maxLength\":16,\"isCustom\":true},\"advowareSyncBaseline\":{\"type\":\"text"
    "\",\"isCustom\":true},\"emailAddressIsOptedOut\":{\"type\":\"bool\",\"notStorable\":true,"
    "\"layoutDetailDisabled\":true,\"layoutDefaultSidePanelDisabled\":true,\"mergeDisabled\":tr"
    "ue,\"customizationDefaultDisabled\":true,\"customizationReadOnlyDisabled\":true,\"customiz"
    "ationInlineEditDisabledDisabled\":true},\"emailAddressIsInvalid\":{\"type\":\"bool\",\"not"
    "Storable\":true,\"layoutDetailDisabled\":true,\"layoutDefaultSidePanelDisabled\":true,\"me"
    "rgeDisabled\":true,\"customizationDefaultDisabled\":true,\"customizationReadOnlyDisabled\""
    ":true,\"customizationInlineEditDisabledDisabled\":true},\"phoneNumberIsOptedOut\":{\"type"
    "\":\"bool\",\"notStorable\":true,\"layoutDetailDisabled\":true,\"layoutDefaultSidePanelDis"
    "abled\":true,\"mergeDisabled\":true,\"customizationDefaultDisabled\":true,\"customizationR"
    "eadOnlyDisabled\":true,\"customizationInlineEditDisabledDisabled\":true},\"phoneNumberIsIn"
    "valid\":{\"type\":\"bool\",\"notStorable\":true,\"layoutDetailDisabled\":true,\"layoutDefa"
    "ultSidePanelDisabled\":true,\"mergeDisabled\":true,\"customizationDefaultDisabled\":true,"
    "\"customizationReadOnlyDisabled\":true,\"customizationInlineEditDisabledDisabled\":true},"
    "\"billingAddressMap\":{\"type\":\"map\",\"notStorable\":true,\"orderDisabled\":true,\"read"
    "Only\":true,\"layoutListDisabled\":true,\"provider\":\"Google\",\"height\":300,\"exportDis"
    "abled\":true,\"importDisabled\":true},\"shippingAddressMap\":{\"type\":\"map\",\"notStorab"
    "le\":true,\"orderDisabled\":true,\"readOnly\":true,\"layoutListDisabled\":true,\"provider"
    "\":\"Google\",\"height\":300,\"exportDisabled\":true,\"importDisabled\":true},\"streamUpda"
    "tedAt\":{\"type\":\"datetime\",\"readOnly\":true,\"customizationReadOnlyDisabled\":true}},"
    "\"links\":{\"createdBy\":{\"type\":\"belongsTo\",\"entity\":\"User\"},\"modifiedBy\":{\"ty"
    "pe\":\"belongsTo\",\"entity\":\"User\"},\"assignedUser\":{\"type\":\"belongsTo\",\"entity"
    "\":\"User\"},\"teams\":{\"type\":\"hasMany\",\"entity\":\"Team\",\"relationName\":\"entity"
    "Team\",\"layoutRelationshipsDisabled\":true}},\"collection\":{\"orderBy\":\"createdAt\",\""
    "order\":\"desc\",\"sortBy\":\"createdAt\",\"asc\":false},\"indexes\":{\"name\":{\"columns"
    "\":[\"name\",\"deleted\"]},\"assignedUser\":{\"columns\":[\"assignedUserId\",\"deleted\"]}"
    ",\"createdAt\":{\"columns\":[\"createdAt\"]},\"createdAtId\":{\"unique\":true,\"columns\":"
    "[\"createdAt\",\"id\"]}},\"optimisticConcurrencyControl\":true}";

/* The record's attributes in EspoCRM's order (GET, 02 step 3). */
/* clang-format off */
const char *const esim__attrs[] = {
    "id", "name", "deleted", "description", "website", "emailAddress", "phoneNumber",
    "billingAddressStreet", "billingAddressCity", "billingAddressState", "billingAddressCountry",
    "billingAddressPostalCode", "shippingAddressStreet", "shippingAddressCity",
    "shippingAddressState", "shippingAddressCountry", "shippingAddressPostalCode", "createdAt",
    "modifiedAt", "vorname", "rechtsform", "titel", "anrede", "bAnrede", "zusatz", "dateOfBirth",
    "betnr", "advowareRowId", "advowareLastSync", "syncStatus", "syncRetryCount", "syncNextRetry",
    "syncAutoResetAt", "syncErrorMessage", "kommunikationHash", "advowareSyncBaseline",
    "emailAddressIsOptedOut", "emailAddressIsInvalid", "phoneNumberIsOptedOut",
    "phoneNumberIsInvalid", "streamUpdatedAt", "emailAddressData", "phoneNumberData",
    "createdById", "createdByName", "modifiedById", "modifiedByName", "assignedUserId",
    "assignedUserName", "teamsIds", "teamsNames", "isFollowed", "followersIds", "followersNames",
    "versionNumber"};
/* clang-format on */
const size_t esim__nattrs = sizeof esim__attrs / sizeof esim__attrs[0];

/* ---- the entity's fields ------------------------------------------------------------------ */

int esim__fields_init(struct esim *e)
{
    e->defs = json_loads(ENTITY_DEFS_JSON, 0, NULL);
    e->fields = json_object_get(e->defs, "fields");
    if (!e->fields)
        return -1;
    if (e->person) /* 02 step 8: the Person template's list */
        json_object_set_new(json_object_get(e->fields, "phoneNumber"), "typeList",
                            json_pack("[s,s,s,s,s]", "Mobile", "Office", "Home", "Fax", "Other"));
    json_object_set_new(json_object_get(e->fields, "phoneNumber"), "defaultType",
                        json_string(e->person ? "Mobile" : "Office"));
    const char *name;
    json_t *def;
    void *tmp;
    json_object_foreach_safe(e->fields, tmp, name, def)
    {
        if (esim__attr_dropped(e, name))
            json_object_del(e->fields, name);
    }
    return 0;
}

bool esim__attr_dropped(const struct esim *e, const char *attr)
{
    for (size_t i = 0; i < e->conf.drop_fields.n; i++) {
        const char *f = e->conf.drop_fields.v[i];
        size_t n = strlen(f);
        if (strcmp(attr, f) == 0)
            return true;
        /* a phone or e-mail field takes its list and flags along */
        if ((strcmp(f, "phoneNumber") == 0 || strcmp(f, "emailAddress") == 0) &&
            strncmp(attr, f, n) == 0)
            return true;
    }
    return false;
}

static const char *field_type(const struct esim *e, const char *name)
{
    return esim__jstr(json_object_get(e->fields, name), "type");
}

/* Attributes a write may set; anything else is ignored (03 step 13). */
static bool writable(const struct esim *e, const char *k)
{
    if (esim__attr_dropped(e, k))
        return false;
    if (strcmp(k, "phoneNumberData") == 0 || strcmp(k, "emailAddressData") == 0 ||
        strcmp(k, "assignedUserId") == 0)
        return true;
    json_t *def = json_object_get(e->fields, k);
    const char *t = esim__jstr(def, "type");
    if (!t || json_is_true(json_object_get(def, "readOnly")) ||
        json_is_true(json_object_get(def, "notStorable")))
        return false;
    static const char *const not_values[] = {"address", "map", "link", "linkMultiple"};
    return !ESIM_IN(t, not_values);
}

json_t *esim__coerce(const struct esim *e, const char *k, json_t *v)
{
    const char *t = field_type(e, k);
    if (t && strcmp(t, "int") == 0 && json_is_string(v)) {
        char *end;
        long long n = strtoll(json_string_value(v), &end, 10);
        if (end != json_string_value(v) && !*end)
            return json_integer(n);
    }
    return json_incref(v);
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static bool matches_date(const char *s, bool with_time)
{
    /* YYYY-MM-DD[ HH:MM[:SS]] */
    static const char date[] = "dddd-dd-dd";
    for (size_t i = 0; i < sizeof date - 1; i++)
        if (!s[i] || (date[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != date[i]))
            return false;
    if (!with_time)
        return s[10] == '\0';
    static const char tm[] = " dd:dd";
    for (size_t i = 0; i < sizeof tm - 1; i++)
        if (!s[10 + i] || (tm[i] == 'd' ? !isdigit((unsigned char)s[10 + i]) : s[10 + i] != tm[i]))
            return false;
    const char *rest = s + 16;
    return *rest == '\0' || (rest[0] == ':' && isdigit((unsigned char)rest[1]) &&
                             isdigit((unsigned char)rest[2]) && rest[3] == '\0');
}

/* EspoCRM's e-mail check (PHP's FILTER_VALIDATE_EMAIL, in essence). */
static bool email_valid(const char *s)
{
    const char *at = strrchr(s, '@');
    size_t n = strlen(s);
    if (!at || at == s || n > 254 || (size_t)(at - s) > 64 || !at[1])
        return false;
    static const char local_ok[] = "!#$%&'*+/=?^_`{|}~.-";
    for (const char *p = s; p < at; p++)
        if (!isalnum((unsigned char)*p) && !strchr(local_ok, *p))
            return false;
    if (s[0] == '.' || at[-1] == '.' || strstr(s, ".."))
        return false;
    const char *d = at + 1, *dot = strrchr(d, '.');
    if (!dot || dot == d || !dot[1])
        return false;
    for (const char *p = d; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return false;
        if ((*p == '.' || *p == '-') && (p == d || p[1] == '\0' || p[1] == '.'))
            return false;
    }
    for (const char *p = dot + 1; *p; p++)
        if (!isalpha((unsigned char)*p))
            return false;
    return strlen(dot + 1) >= 2;
}

static int fail(struct esim_vfail *f, const char *field, const char *type)
{
    snprintf(f->field, sizeof f->field, "%s", field);
    f->type = type;
    return -1;
}

static int validate_phones(const json_t *def, const json_t *in, struct esim_vfail *f)
{
    json_t *list = json_object_get(in, "phoneNumberData"), *it;
    size_t i;
    if (list) {
        json_array_foreach(list, i, it)
        {
            const char *num = esim__jstr(it, "phoneNumber"), *type = esim__jstr(it, "type");
            if (!num || !phone_espo_valid(num))
                return fail(f, "phoneNumber", "valid");
            if (type && !esim__in_json_list(json_object_get(def, "typeList"), type))
                return fail(f, "phoneNumber", "valid");
        }
        if (json_array_size(list) > PHONE_MAX_COUNT)
            return fail(f, "phoneNumber", "maxCount");
        return 0;
    }
    const char *num = esim__jstr(in, "phoneNumber");
    if (num && *num && !phone_espo_valid(num))
        return fail(f, "phoneNumber", "valid");
    return 0;
}

static int validate_emails(const json_t *in, struct esim_vfail *f)
{
    json_t *list = json_object_get(in, "emailAddressData"), *it;
    size_t i;
    if (list) {
        json_array_foreach(list, i, it)
        {
            const char *addr = esim__jstr(it, "emailAddress");
            if (!addr || !email_valid(addr))
                return fail(f, "emailAddress", "emailAddress");
        }
        return 0;
    }
    const char *addr = esim__jstr(in, "emailAddress");
    if (addr && *addr && !email_valid(addr))
        return fail(f, "emailAddress", "emailAddress");
    return 0;
}

int esim__validate(const struct esim *e, const json_t *in, bool creating, struct esim_vfail *f)
{
    const char *name;
    json_t *def;
    json_object_foreach(e->fields, name, def)
    {
        const char *type = esim__jstr(def, "type");
        if (!type)
            continue;
        if (strcmp(type, "phone") == 0) {
            if (validate_phones(def, in, f) != 0)
                return -1;
            continue;
        }
        if (strcmp(type, "email") == 0) {
            if (validate_emails(in, f) != 0)
                return -1;
            continue;
        }
        json_t *v = json_object_get(in, name);
        bool empty = !v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0);
        if (json_is_true(json_object_get(def, "required")) && empty && (creating || v))
            return fail(f, name, "required");
        if (empty)
            continue;
        const char *s = json_string_value(v);
        json_t *max = json_object_get(def, "maxLength");
        if (strcmp(type, "enum") == 0) {
            if (!s || !esim__in_json_list(json_object_get(def, "options"), s))
                return fail(f, name, "valid");
            continue;
        }
        if (strcmp(type, "int") == 0) {
            json_t *n = esim__coerce(e, name, v);
            bool ok = json_is_integer(n);
            json_decref(n);
            if (!ok)
                return fail(f, name, "valid");
            continue;
        }
        if ((strcmp(type, "date") == 0 || strcmp(type, "datetime") == 0) &&
            (!s || !matches_date(s, type[4] == 't')))
            return fail(f, name, "valid");
        if (s && json_is_integer(max) && (json_int_t)utf8_len(s) > json_integer_value(max))
            return fail(f, name, "maxLength");
        const char *pattern = esim__jstr(def, "pattern");
        if (s && pattern && strcmp(pattern, "$noBadCharacters") == 0 && strpbrk(s, "<>="))
            return fail(f, name, "pattern");
    }
    return 0;
}

/* The write's attributes EspoCRM takes, sanitised: unknown ones dropped, phone numbers in their
 * stored form (list items otherwise as sent). New object. */
json_t *esim__filter_input(const struct esim *e, const json_t *body)
{
    json_t *in = json_object(), *v;
    const char *k;
    json_object_foreach((json_t *)body, k, v)
    {
        if (!writable(e, k))
            continue;
        if (strcmp(k, "phoneNumberData") == 0 || strcmp(k, "emailAddressData") == 0) {
            json_t *list = json_array(), *it;
            size_t i;
            bool phone = k[0] == 'p';
            json_array_foreach(v, i, it)
            {
                if (!json_is_object(it))
                    continue;
                json_t *copy = json_copy(it);
                const char *num = esim__jstr(it, "phoneNumber");
                if (phone && num) {
                    char *s = phone_espo_sanitize(num);
                    json_object_set_new(copy, "phoneNumber", json_string(s ? s : num));
                    free(s);
                }
                json_array_append_new(list, copy);
            }
            json_object_set_new(in, k, list);
        } else if (strcmp(k, "phoneNumber") == 0 && json_is_string(v)) {
            char *s = phone_espo_sanitize(json_string_value(v));
            json_object_set_new(in, k, json_string(s ? s : json_string_value(v)));
            free(s);
        } else {
            json_object_set(in, k, v);
        }
    }
    return in;
}

size_t esim__list_primary(const json_t *sent)
{
    size_t i;
    json_t *it;
    json_array_foreach(sent, i, it)
    {
        if (json_is_true(json_object_get(it, "primary")))
            return i;
    }
    return 0;
}

/* Every item with all keys, optOut/invalid false unless sent, the primary (the first marked,
 * else the first) first. */
json_t *esim__list_full(const struct esim *e, const json_t *sent, bool phone)
{
    json_t *out = json_array(), *it;
    const char *key = phone ? "phoneNumber" : "emailAddress";
    const char *deftype = esim__jstr(json_object_get(e->fields, "phoneNumber"), "defaultType");
    size_t i, primary = esim__list_primary(sent);
    for (int pass = 0; pass < 2; pass++) {
        json_array_foreach(sent, i, it)
        {
            const char *value = esim__jstr(it, key);
            if (!value || (pass == 0) != (i == primary))
                continue;
            json_t *full = json_object();
            json_object_set_new(full, key, json_string(value));
            if (phone) {
                const char *type = esim__jstr(it, "type");
                json_object_set_new(full, "type", json_string(type ? type : deftype));
            } else {
                char *lower = esim__lower_dup(value);
                json_object_set_new(full, "lower", json_string(lower ? lower : value));
                free(lower);
            }
            json_object_set_new(full, "primary", json_boolean(pass == 0));
            json_object_set_new(full, "optOut",
                                json_boolean(json_is_true(json_object_get(it, "optOut"))));
            json_object_set_new(full, "invalid",
                                json_boolean(json_is_true(json_object_get(it, "invalid"))));
            json_array_append_new(out, full);
        }
    }
    return out;
}

/* Stores a list's derived attributes: the primary's value and its optOut/invalid flags (null
 * when the list is empty). */
void esim__store_list(json_t *ent, json_t *full /* stolen */, bool phone)
{
    const char *key = phone ? "phoneNumber" : "emailAddress";
    json_t *primary = json_array_get(full, 0);
    char flag[40];
    json_object_set(ent, key, primary ? json_object_get(primary, key) : json_null());
    snprintf(flag, sizeof flag, "%sIsOptedOut", key);
    json_object_set(ent, flag, primary ? json_object_get(primary, "optOut") : json_null());
    snprintf(flag, sizeof flag, "%sIsInvalid", key);
    json_object_set(ent, flag, primary ? json_object_get(primary, "invalid") : json_null());
    json_object_set_new(ent, phone ? "phoneNumberData" : "emailAddressData", full);
}
