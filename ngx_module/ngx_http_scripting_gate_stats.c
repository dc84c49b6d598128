
/*
 * Copyright (C) nginx-scripting-gate authors
 */


#include "ngx_http_scripting_gate_module.h"


char *
ngx_http_scripting_gate_stats(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return NGX_CONF_OK;
}
