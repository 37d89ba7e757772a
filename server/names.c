/*
 * names.c — what a model name and a sequence id may be (svc.h): both appear
 * in paths, headers, log lines and file names, so the alphabets are small.
 */
#include "svc.h"

bool svc_valid_model_name(const char *s, size_t n) {
    if (n == 0 || n > SVC_MODEL_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) return false;
    }
    return true;
}

bool svc_valid_seq_id(const char *s, size_t n) {
    if (n == 0 || n > SVC_SEQ_ID_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '_' || c == ':' || c == '~' || c == '-';
        if (!ok) return false;
    }
    return true;
}
