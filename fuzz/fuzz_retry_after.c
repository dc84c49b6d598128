
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Retry-After as the upstream sends it: the whole input is one value for
 * ngx_http_scripting_gate_retry_after_value() (delay-seconds or an
 * HTTP-date); then the input, split on "\n" into header lines ("Name:
 * value", a line without ":" is a Retry-After value, a line starting with
 * "-" a deleted header), fills r->headers_out of a request, a list of
 * two-element parts, and ngx_http_scripting_gate_parse_retry_after() must
 * find the same header the test finds and give the same answer.
 */


#include "fuzz_common.h"


#define FUZZ_MAX_MS  ((ngx_msec_t) (NGX_MAX_INT32_VALUE / 1000) * 1000)


static void
fuzz_check_value(ngx_str_t *value)
{
    ngx_int_t   rc, n;
    ngx_uint_t  i, digits;
    ngx_msec_t  ms;

    ms = 12345;
    rc = ngx_http_scripting_gate_retry_after_value(value, &ms);

    FUZZ_ASSERT(rc == NGX_OK || rc == NGX_ERROR);

    if (rc == NGX_ERROR) {
        FUZZ_ASSERT(ms == 12345);

    } else {
        /* whole seconds, at most what the parser caps them to */
        FUZZ_ASSERT(ms <= FUZZ_MAX_MS);
        FUZZ_ASSERT(ms % 1000 == 0);
    }

    digits = (value->len > 0);

    for (i = 0; i < value->len; i++) {
        if (value->data[i] < '0' || value->data[i] > '9') {
            digits = 0;
            break;
        }
    }

    if (digits && value->len <= 10) {
        /* delay-seconds are taken as they are */
        n = ngx_atoi(value->data, value->len);

        FUZZ_ASSERT(rc == NGX_OK);
        FUZZ_ASSERT(ms == (ngx_msec_t) ngx_min(n, NGX_MAX_INT32_VALUE / 1000)
                          * 1000);
    }
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char              *p, *last, *eol, *colon, *buf;
    ngx_int_t            rc, expect;
    ngx_str_t            value, *found;
    ngx_msec_t           ms, ems;
    ngx_pool_t          *pool;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;
    ngx_http_conf_ctx_t  ctx;

    static void  *confs[1];

    pool = ngx_create_pool(4096, &fuzz_log);
    if (pool == NULL) {
        abort();
    }

    /* an exact copy, so that a read past the end is seen */
    buf = ngx_pnalloc(pool, size ? size : 1);
    if (buf == NULL) {
        abort();
    }

    ngx_memcpy(buf, data, size);

    value.data = buf;
    value.len = size;

    fuzz_check_value(&value);

    ctx.main_conf = confs;
    ctx.srv_conf = confs;
    ctx.loc_conf = confs;

    r = fuzz_request(pool, &ctx);
    if (r == NULL) {
        abort();
    }

    found = NULL;

    for (p = buf, last = buf + size; p < last; p = eol + 1) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            abort();
        }

        ngx_memzero(h, sizeof(ngx_table_elt_t));
        h->hash = 1;

        if (p < eol && *p == '-') {
            h->hash = 0;
            p++;
        }

        colon = ngx_strlchr(p, eol, ':');

        if (colon == NULL) {
            ngx_str_set(&h->key, "Retry-After");
            h->value.data = p;
            h->value.len = eol - p;

        } else {
            h->key.data = p;
            h->key.len = colon - p;

            for (p = colon + 1; p < eol && *p == ' '; p++) { /* void */ }

            h->value.data = p;
            h->value.len = eol - p;
        }

        fuzz_check_value(&h->value);

        if (found == NULL && h->hash
            && h->key.len == sizeof("Retry-After") - 1
            && ngx_strncasecmp(h->key.data, (u_char *) "retry-after",
                               h->key.len) == 0)
        {
            found = &h->value;
        }
    }

    ems = 0;

    if (found == NULL) {
        expect = NGX_DECLINED;

    } else {
        expect = ngx_http_scripting_gate_retry_after_value(found, &ems);
    }

    ms = 0;
    rc = ngx_http_scripting_gate_parse_retry_after(r, &ms);

    FUZZ_ASSERT(rc == expect);

    if (rc == NGX_OK) {
        FUZZ_ASSERT(ms == ems);
    }

    ngx_destroy_pool(pool);

    return 0;
}
