
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Retry-After as the upstream sends it: the whole input is one value for
 * ngx_http_scripting_gate_retry_after_value() (delay-seconds or an
 * HTTP-date); then the input, split on "\n" into header lines ("Name:
 * value", a line without ":" is a Retry-After value, a line starting with
 * "-" a deleted header), fills r->headers_out of a request, a list of
 * two-element parts, whose answer is a 429.
 *
 * The retry module reads an answer's Retry-After once, in its header
 * filter (ngx_http_scripting_gate_retry_after(), static there): the
 * harness runs the postconfiguration of the gate and retry modules, as
 * nginx does, and sends the answer's header down the filter chain they
 * install, for a request the gate let through in a location with
 * "scripting_retry_after on max=1h".  Its one gate holds a key of a zone
 * of the harness's own backend (the gate API's table of operations),
 * which records the answer and the cool-down it sets.  The key must cool
 * down exactly when the test finds a live Retry-After (any case) and the
 * value parser accepts it, for as long as it says, up to max; the 429
 * must be the attempt's outcome, counted once, and the request's end must
 * give the slot back once.
 */


#include "fuzz_common.h"


#define FUZZ_MAX_MS  ((ngx_msec_t) (NGX_MAX_INT32_VALUE / 1000) * 1000)


static fuzz_conf_t                        fuzz_fc;
static ngx_http_scripting_gate_backend_t  fuzz_backend;
static ngx_http_scripting_gate_conf_t     fuzz_gate_conf;
static ngx_http_scripting_gate_zone_t     fuzz_zone;
static ngx_http_scripting_gate_ticket_t   fuzz_ticket;
static ngx_uint_t                         fuzz_answers;
static ngx_uint_t                         fuzz_status;
static ngx_uint_t                         fuzz_cooldowns;
static ngx_msec_t                         fuzz_delay;
static ngx_uint_t                         fuzz_headers;
static ngx_uint_t                         fuzz_releases;


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


/*
 * The backend: an answer and a cool-down are recorded, a release given
 * back.  An answer's header needs no other operation: the others are left
 * NULL, so that a call to one of them stops the fuzzer.
 */

static void
fuzz_answered(ngx_http_scripting_gate_hold_t *h, ngx_uint_t status)
{
    fuzz_answers++;
    fuzz_status = status;
}


static void
fuzz_cooldown(ngx_http_scripting_gate_hold_t *h, ngx_msec_t delay)
{
    fuzz_cooldowns++;
    fuzz_delay = delay;
}


static void
fuzz_release(ngx_http_scripting_gate_hold_t *h)
{
    fuzz_releases++;
    h->ticket = NULL;
}


/* the end of the filter chain: nginx's header filter would send it */

static ngx_int_t
fuzz_header_last(ngx_http_request_t *r)
{
    fuzz_headers++;
    return NGX_OK;
}


static ngx_int_t
fuzz_body_last(ngx_http_request_t *r, ngx_chain_t *in)
{
    return NGX_OK;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_uint_t          i;
    ngx_str_t           words[3];
    ngx_http_module_t  *module;

    static ngx_module_t  *filters[] = {
        &ngx_http_scripting_gate_module,
        &ngx_http_scripting_gate_retry_module,
        NULL
    };

    fuzz_init();

    /* http { scripting_retry_after on max=1h; }, merged, for all inputs */

    if (fuzz_conf_init(&fuzz_fc) != NGX_OK) {
        abort();
    }

    ngx_str_set(&words[0], "scripting_retry_after");
    ngx_str_set(&words[1], "on");
    ngx_str_set(&words[2], "max=1h");

    if (fuzz_conf_directive(&fuzz_fc, NGX_HTTP_MAIN_CONF,
                            fuzz_fc.ctx->loc_conf, words, 3)
        != NGX_CONF_OK)
    {
        abort();
    }

    module = ngx_http_scripting_gate_retry_module.ctx;
    i = ngx_http_scripting_gate_retry_module.ctx_index;

    if (module->merge_loc_conf(fuzz_fc.cf,
                               module->create_loc_conf(fuzz_fc.cf),
                               fuzz_fc.ctx->loc_conf[i])
        != NGX_CONF_OK)
    {
        abort();
    }

    /* the filters, installed in front of the harness's own end */

    ngx_http_top_header_filter = fuzz_header_last;
    ngx_http_top_body_filter = fuzz_body_last;

    for (i = 0; filters[i]; i++) {
        module = filters[i]->ctx;

        if (module->postconfiguration(fuzz_fc.cf) != NGX_OK) {
            abort();
        }
    }

    fuzz_backend.answered = fuzz_answered;
    fuzz_backend.cooldown = fuzz_cooldown;
    fuzz_backend.release = fuzz_release;

    /* scripting_gate ... (cooldown on, the default) */
    fuzz_gate_conf.cooldown = 1;

    fuzz_zone.backend = &fuzz_backend;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                     *p, *last, *eol, *colon, *buf;
    ngx_int_t                   expect;
    ngx_str_t                   value, *found;
    ngx_msec_t                  ems;
    ngx_pool_t                 *pool;
    ngx_table_elt_t            *h;
    ngx_http_request_t         *r;
    ngx_http_scripting_gate_t  *g;

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

    r = fuzz_request(pool, fuzz_fc.ctx);
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
    expect = found ? ngx_http_scripting_gate_retry_after_value(found, &ems)
                   : NGX_DECLINED;

    /* an upstream's 429 to a request that holds a slot */

    g = ngx_http_scripting_gate_get(r, 1);
    r->upstream = ngx_pcalloc(pool, sizeof(ngx_http_upstream_t));

    if (g == NULL || r->upstream == NULL) {
        abort();
    }

    g->holds = &g->first;
    g->nholds = 1;
    g->next = 1;    /* its one slot is held */

    g->first.zone = &fuzz_zone;
    g->first.conf = &fuzz_gate_conf;
    g->first.ticket = &fuzz_ticket;
    g->first.gate = g;

    r->headers_out.status = NGX_HTTP_TOO_MANY_REQUESTS;

    fuzz_answers = 0;
    fuzz_status = 0;
    fuzz_cooldowns = 0;
    fuzz_delay = 0;
    fuzz_headers = 0;
    fuzz_releases = 0;

    FUZZ_ASSERT(ngx_http_top_header_filter(r) == NGX_OK);

    /* the 429 counted once, by the retry module's filter, not the gate's */
    FUZZ_ASSERT(fuzz_headers == 1);
    FUZZ_ASSERT(fuzz_answers == 1);
    FUZZ_ASSERT(fuzz_status == NGX_HTTP_TOO_MANY_REQUESTS);
    FUZZ_ASSERT(g->outcome == NGX_HTTP_TOO_MANY_REQUESTS);

    if (expect == NGX_OK) {
        FUZZ_ASSERT(fuzz_cooldowns == 1);
        FUZZ_ASSERT(fuzz_delay == ngx_min(ems, (ngx_msec_t) 3600000));

    } else {
        FUZZ_ASSERT(fuzz_cooldowns == 0);
    }

    /* the request's end gives the slot back, once */
    ngx_destroy_pool(pool);

    FUZZ_ASSERT(fuzz_releases == 1);

    return 0;
}
