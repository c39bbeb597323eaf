/* phone.cc: phone numbers as EspoCRM stores and validates them (SPEC §5.4), on libphonenumber.
 * The only file of the project that includes libphonenumber; phone.h is its C interface. Every
 * string returned is malloc'd and freed by the caller with free().
 *
 * Where the rules come from (EspoCRM 9.1.5, github.com/espocrm/espocrm, tag 9.1.5; our own code,
 * none of theirs). EspoCRM uses brick/phonenumber 0.5 over giggsey/libphonenumber-for-php 8.13,
 * the PHP port of the C++ libphonenumber used here (Debian ships 8.12: metadata may differ at the
 * edges). brick's PhoneNumber::parse(s, region) is PhoneNumberUtil::parse, its string form is
 * format(E164), its isPossibleNumber() is PhoneNumberUtil::isPossibleNumber.
 *
 *  - Sanitiser: application/Espo/Core/PhoneNumber/Sanitizer.php, called for `phoneNumber` and
 *    every `phoneNumberData[].phoneNumber` by application/Espo/Classes/FieldSanitizers/Phone.php
 *    without a country: PHP trim(); a value starting with '+' is parsed (no region) when
 *    `phoneNumberInternational` is on (default true, application/Espo/Resources/defaults/
 *    config.php) and replaced by its E.164 form; a parse failure or any other value stays
 *    trimmed. Extensions are split off only with `phoneNumberExtensions` (default false), so
 *    not here.
 *  - Validation: application/Espo/Classes/FieldValidators/PhoneType.php (isValidNumber; the
 *    same test as application/Espo/Core/PhoneNumber/InternationalValidator.php): non-empty;
 *    matches ^[0-9A-Za-z_@:#+().\- ]+$ (metadata app.regExpPatterns.phoneNumberLoose,
 *    application/Espo/Resources/metadata/app/regExpPatterns.json); then, in international mode,
 *    parses without a region, its E.164 form equals the value exactly, and it is a possible
 *    number. Max length 36 and max count 10 are separate checks (same file), not made here.
 *  - The comparison form (phone_e164) is ours (SPEC §5.4): libphonenumber's parse in the
 *    default region does "00…" → "+…", national prefix 0 → country code and separators; the
 *    result is returned only when EspoCRM would accept it. */
#include "phone.h"

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace
{

/* "DE" until phone_set_default_region(); written once at start, before threads. */
char g_region[3] = "DE";

/* Inputs longer than this are no phone numbers: libphonenumber answers TOO_LONG above 250
 * characters (kMaxInputStringLength), but only after running its regular expressions over all of
 * it, which takes seconds for long garbage. */
const size_t PHONE_MAX_INPUT = 250;

const PhoneNumberUtil &util()
{
    return *PhoneNumberUtil::GetInstance();
}

/* PHP's trim() set: space, \t, \n, \r, \0 (never inside a C string), \v. */
bool is_php_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v';
}

std::string trimmed(const char *s)
{
    size_t len = strlen(s);
    size_t b = 0;
    while (b < len && is_php_space(s[b]))
        b++;
    while (len > b && is_php_space(s[len - 1]))
        len--;
    return std::string(s + b, len - b);
}

char *dup_string(const std::string &s)
{
    char *p = static_cast<char *>(malloc(s.size() + 1));
    if (p)
        memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

/* Upper-cased two-letter region into out[3]; false when region is not two ASCII letters. */
bool region_code(const char *region, char out[3])
{
    if (!region || !isalpha(static_cast<unsigned char>(region[0])) ||
        !isalpha(static_cast<unsigned char>(region[1])) || region[2] != '\0')
        return false;
    out[0] = static_cast<char>(toupper(static_cast<unsigned char>(region[0])));
    out[1] = static_cast<char>(toupper(static_cast<unsigned char>(region[1])));
    out[2] = '\0';
    return true;
}

/* Parse in region ("ZZ" = none, only '+' numbers); true on success. */
bool parse(const std::string &value, const std::string &region, PhoneNumber *out)
{
    return util().Parse(value, region, out) == PhoneNumberUtil::NO_PARSING_ERROR;
}

bool loose_chars(const std::string &s)
{
    for (char c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        if (!(isascii(u) && isalnum(u)) && !strchr("_@:#+().- ", c))
            return false;
    }
    return true;
}

/* PhoneType.php isValidNumber, international mode. */
bool espo_valid(const std::string &s)
{
    if (s.empty() || s.size() > PHONE_MAX_INPUT || !loose_chars(s))
        return false;
    PhoneNumber n;
    if (!parse(s, "ZZ", &n))
        return false;
    std::string e164;
    util().Format(n, PhoneNumberUtil::E164, &e164);
    return e164 == s && util().IsPossibleNumber(n);
}

/* The number value stands for (region for national forms), as E.164 that espo_valid accepts;
 * false when none. */
bool to_e164(const char *value, const char *region, std::string *out)
{
    if (!value || strlen(value) > PHONE_MAX_INPUT)
        return false;
    char rc[3];
    if (!region_code(region ? region : g_region, rc))
        memcpy(rc, "ZZ", 3);
    std::string v = trimmed(value);
    PhoneNumber n;
    std::string e164;
    if (parse(v, rc, &n) && util().IsPossibleNumber(n)) {
        util().Format(n, PhoneNumberUtil::E164, &e164);
        if (espo_valid(e164)) {
            *out = e164;
            return true;
        }
    }
    /* "00…" is the international prefix even where the region dials abroad otherwise. */
    if (v.compare(0, 2, "00") == 0 && parse("+" + v.substr(2), "ZZ", &n) &&
        util().IsPossibleNumber(n)) {
        util().Format(n, PhoneNumberUtil::E164, &e164);
        if (espo_valid(e164)) {
            *out = e164;
            return true;
        }
    }
    return false;
}

} // namespace

extern "C" {

char *phone_espo_sanitize(const char *value)
{
    if (!value)
        return NULL;
    try {
        std::string v = trimmed(value);
        if (!v.empty() && v[0] == '+' && v.size() <= PHONE_MAX_INPUT) {
            PhoneNumber n;
            if (parse(v, "ZZ", &n)) {
                std::string e164;
                util().Format(n, PhoneNumberUtil::E164, &e164);
                return dup_string(e164);
            }
        }
        return dup_string(v);
    } catch (...) {
        return NULL;
    }
}

bool phone_espo_valid(const char *sanitized)
{
    if (!sanitized)
        return false;
    try {
        return espo_valid(sanitized);
    } catch (...) {
        return false;
    }
}

char *phone_e164(const char *value, const char *region)
{
    try {
        std::string e164;
        return to_e164(value, region, &e164) ? dup_string(e164) : NULL;
    } catch (...) {
        return NULL;
    }
}

char *phone_international(const char *value, const char *region)
{
    try {
        std::string e164;
        PhoneNumber n;
        if (!to_e164(value, region, &e164) || !parse(e164, "ZZ", &n))
            return NULL;
        std::string intl;
        util().Format(n, PhoneNumberUtil::INTERNATIONAL, &intl);
        return dup_string(intl);
    } catch (...) {
        return NULL;
    }
}

bool phone_eq(const char *a, const char *b, const char *region)
{
    if (!a || !b)
        return false;
    try {
        std::string ea, eb;
        if (to_e164(a, region, &ea) && to_e164(b, region, &eb))
            return ea == eb;
        return trimmed(a) == trimmed(b);
    } catch (...) {
        return false;
    }
}

int phone_set_default_region(const char *region)
{
    char rc[3];
    if (!region_code(region, rc))
        return -1;
    try {
        if (util().GetCountryCodeForRegion(rc) == 0)
            return -1;
    } catch (...) {
        return -1;
    }
    memcpy(g_region, rc, sizeof g_region);
    return 0;
}

const char *phone_default_region(void)
{
    return g_region;
}

} // extern "C"
