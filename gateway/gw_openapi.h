/*  gw_openapi.h: GET /api/openapi.json.  */
#ifndef GW_OPENAPI_H_INCLUDED
#define GW_OPENAPI_H_INCLUDED

//  The document as compact JSON; static storage.
const char *gw_openapi_json (void);

#endif
