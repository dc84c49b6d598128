
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The directives of the .so's four modules, as nginx hands them over: the
 * input is a configuration, one directive a line (or up to a ";"), words
 * split on blanks; a line "location" opens a location, and directives go
 * to the http{} level before the first one.  Each directive of the
 * modules' command tables (the gate's scripting_gate_zone,
 * scripting_gate, scripting_json_var and the status, dry_run and
 * log_level slots; the retry's scripting_retry and scripting_retry_after;
 * the async module's scripting_async_zone, scripting_async and
 * scripting_async_jobs; the status module's scripting_gate_stats) runs
 * its real handler with the confs its context has; other lines are
 * skipped, and the first error ends the input, as it ends "nginx -t".
 *
 * A configuration that is accepted is merged into every location with
 * each module's merge_loc_conf(), and must then hold what the handlers
 * promise: each gate has a zone of its own and a limit of 1 to 65535
 * (or a variable, but not when adaptive) with min not above it, a zone
 * is at least 8 pages, a retry policy has 1 to 50 attempts, status codes
 * from 400 to 599, 0 < base <= cap, a budget up to 100%; an async
 * location has a jobs zone, a pass and a jobs_uri ending in "/".
 */


#include "fuzz_common.h"


#define FUZZ_LOCATIONS  16
#define FUZZ_WORDS      (NGX_CONF_MAX_ARGS + 2)


static void
fuzz_check_loc(fuzz_conf_t *fc, void **loc)
{
    ngx_uint_t                                 i, j, *code;
    ngx_http_scripting_gate_conf_t            *gc;
    ngx_http_scripting_gate_loc_conf_t        *glcf;
    ngx_http_scripting_gate_async_conf_t      *acf;
    ngx_http_scripting_gate_retry_conf_t      *rlcf;
    ngx_http_scripting_gate_retry_policy_t    *rcf;
    ngx_http_scripting_gate_async_loc_conf_t  *alcf;

    glcf = loc[ngx_http_scripting_gate_module.ctx_index];
    rlcf = loc[ngx_http_scripting_gate_retry_module.ctx_index];
    alcf = loc[ngx_http_scripting_gate_async_module.ctx_index];

    gc = glcf->gates ? glcf->gates->elts : NULL;

    for (i = 0; glcf->gates && i < glcf->gates->nelts; i++) {
        FUZZ_ASSERT(gc[i].shm_zone
                    && gc[i].shm_zone->tag == &ngx_http_scripting_gate_module);
        FUZZ_ASSERT(gc[i].limit_cv
                    || (gc[i].limit >= 1 && gc[i].limit <= 65535));
        FUZZ_ASSERT(gc[i].min >= 1
                    && (gc[i].limit_cv || gc[i].min <= gc[i].limit));
        FUZZ_ASSERT(!gc[i].adaptive || gc[i].limit_cv == NULL);
        FUZZ_ASSERT(gc[i].queue_timeout > 0
                    && gc[i].queue_timeout != (ngx_msec_t) NGX_ERROR);

        /* one line per zone */
        for (j = 0; j < i; j++) {
            FUZZ_ASSERT(gc[j].shm_zone != gc[i].shm_zone);
        }
    }

    FUZZ_ASSERT(glcf->status_code >= 400 && glcf->status_code <= 599);
    FUZZ_ASSERT(glcf->dry_run == 0 || glcf->dry_run == 1);
    FUZZ_ASSERT(glcf->log_level >= NGX_LOG_ERR
                && glcf->log_level <= NGX_LOG_INFO);

    FUZZ_ASSERT(rlcf->retry_after == 0 || rlcf->retry_after == 1);
    FUZZ_ASSERT(rlcf->retry_after_max != (ngx_msec_t) NGX_ERROR);

    acf = alcf->async;

    if (acf) {
        FUZZ_ASSERT(acf->jobs && acf->jobs->tag);
        FUZZ_ASSERT(acf->pass.len > 0);
        FUZZ_ASSERT(acf->jobs_uri.len > 0
                    && acf->jobs_uri.data[acf->jobs_uri.len - 1] == '/');
        FUZZ_ASSERT(acf->timeout > 0
                    && acf->timeout != (ngx_msec_t) NGX_ERROR);
    }

    rcf = rlcf->policy;

    if (rcf == NULL) {
        return;
    }

    FUZZ_ASSERT(rcf->attempts >= 1 && rcf->attempts <= 50);
    FUZZ_ASSERT(rcf->base > 0 && rcf->base <= rcf->cap);
    FUZZ_ASSERT(rcf->cap != (ngx_msec_t) NGX_ERROR);
    FUZZ_ASSERT(rcf->deadline != (ngx_msec_t) NGX_ERROR);
    FUZZ_ASSERT(rcf->budget <= 100);
    FUZZ_ASSERT(rcf->jitter <= 3);
    FUZZ_ASSERT(rcf->codes->nelts >= 1);

    code = rcf->codes->elts;

    for (i = 0; i < rcf->codes->nelts; i++) {
        FUZZ_ASSERT(code[i] >= 400 && code[i] <= 599);
    }
}


static void
fuzz_check_zones(fuzz_conf_t *fc)
{
    ngx_uint_t                            i;
    ngx_shm_zone_t                       *shm_zone, **zp;
    ngx_http_scripting_gate_zone_t       *zone;
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    gmcf = fc->ctx->main_conf[ngx_http_scripting_gate_module.ctx_index];
    zp = gmcf->zones.elts;

    for (i = 0; i < gmcf->zones.nelts; i++) {
        shm_zone = zp[i];
        zone = shm_zone->data;

        FUZZ_ASSERT(zone && zone->shm_zone == shm_zone);
        FUZZ_ASSERT(shm_zone->init == ngx_http_scripting_gate_init_zone);
        FUZZ_ASSERT(shm_zone->shm.size >= 8 * ngx_pagesize);
        FUZZ_ASSERT(shm_zone->shm.name.len > 0);
        FUZZ_ASSERT(zone->key.value.len > 0 || zone->key.lengths == NULL);
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
    u_char                   *p, *last, *start, *text;
    char                     *rv;
    void                    **main_loc, **loc, **locs[FUZZ_LOCATIONS + 1];
    ngx_str_t                 words[FUZZ_WORDS];
    ngx_uint_t                n, nlocs, i, m, type;
    fuzz_conf_t               fc;
    ngx_http_module_t        *module;

    if (fuzz_conf_init(&fc) != NGX_OK) {
        abort();
    }

    text = ngx_pnalloc(fc.pool, size + 1);
    if (text == NULL) {
        abort();
    }

    ngx_memcpy(text, data, size);
    text[size] = '\0';

    main_loc = fc.ctx->loc_conf;
    loc = main_loc;
    type = NGX_HTTP_MAIN_CONF;
    nlocs = 0;

    p = text;
    last = text + size;

    while (p < last) {

        /* the words of one directive, each its own copy ending in a zero */

        n = 0;

        while (p < last && *p != '\n' && *p != ';') {

            if (*p == ' ' || *p == '\t' || *p == '\r') {
                p++;
                continue;
            }

            start = p;

            while (p < last && *p != ' ' && *p != '\t' && *p != '\r'
                   && *p != '\n' && *p != ';')
            {
                p++;
            }

            if (n < FUZZ_WORDS) {
                words[n].len = p - start;
                words[n].data = ngx_pnalloc(fc.pool, words[n].len + 1);
                if (words[n].data == NULL) {
                    abort();
                }

                ngx_memcpy(words[n].data, start, words[n].len);
                words[n].data[words[n].len] = '\0';
            }

            n++;
        }

        p++;
        fc.conf_file.line++;

        if (n == 0 || n > FUZZ_WORDS) {
            continue;
        }

        if (words[0].len == 8
            && ngx_strncmp(words[0].data, "location", 8) == 0)
        {
            if (nlocs == FUZZ_LOCATIONS) {
                continue;
            }

            loc = fuzz_conf_loc(&fc);
            if (loc == NULL) {
                abort();
            }

            locs[nlocs++] = loc;
            type = NGX_HTTP_LOC_CONF;
            continue;
        }

        rv = fuzz_conf_directive(&fc, type, loc, words, n);

        if (rv != NULL && rv != NGX_CONF_OK) {
            /* "nginx -t" fails here */
            fuzz_conf_done(&fc);
            return 0;
        }
    }

    /* the configuration is accepted: what every location ends up with */

    fuzz_check_zones(&fc);

    loc = fuzz_conf_loc(&fc);
    if (loc == NULL) {
        abort();
    }

    locs[nlocs++] = loc;

    fc.ctx->loc_conf = main_loc;

    /* http{} inherits nothing: it is merged with a conf of its defaults */
    loc = fuzz_conf_loc(&fc);
    if (loc == NULL) {
        abort();
    }

    /* the .so's modules, nginx's core module left out: not the subject */

    for (m = 1; fuzz_modules[m]; m++) {
        module = fuzz_modules[m]->ctx;
        i = fuzz_modules[m]->ctx_index;

        if (module->merge_loc_conf == NULL) {
            continue;
        }

        FUZZ_ASSERT(module->merge_loc_conf(fc.cf, loc[i], main_loc[i])
                    == NGX_CONF_OK);

        for (n = 0; n < nlocs; n++) {
            FUZZ_ASSERT(module->merge_loc_conf(fc.cf, main_loc[i], locs[n][i])
                        == NGX_CONF_OK);
        }
    }

    for (n = 0; n < nlocs; n++) {
        fuzz_check_loc(&fc, locs[n]);
    }

    fuzz_conf_done(&fc);

    return 0;
}
