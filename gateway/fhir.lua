-- The gateway's FHIR checks that HAProxy's rules cannot express: the search parameters of the
-- query string, of the form body of POST <Type>/_search and of the If-None-Exist header (a
-- conditional create's search), and VKP's ServiceCodes header. Loaded by
-- gateway/haproxy.cfg.template with lua-load-per-thread (no lock shared by the threads); the
-- configuration calls the action only for a request that has a query string, a _search body or
-- one of those headers, so a plain read never enters Lua.
--
-- A parameter that reaches another resource type (_include, _revinclude and their :iterate and
-- :recurse forms, _has, nested _has, a chain, _type, _list) passes only when every type it names
-- is covered by the same client's grant for the same environment, kommune and access, and the
-- token's scope holds that grant's scope. What cannot be resolved to named types is refused:
-- an _include without its target type, an untyped chain, a * wildcard, _contained (other than
-- false), _containedType=container, _filter, _query, and any other _parameter not listed below.
--
-- The maps are those the configuration reads, opened by the same file names: HAProxy then
-- shares one pattern reference, so entries changed over the runtime API (add map, the revoked
-- map, prepare/commit map) are seen here at once. The paths come from setenv in the global
-- section (lua-load takes no arguments in HAProxy 2.6).
--
-- The verdict goes back in variables: txn.fhir_verdict (set last), txn.refusal_status (400,
-- 403, 413 or 415; the configuration refuses any other status with 403),
-- txn.refusal_error and txn.refusal_detail; txn.service_codes holds the granted codes the
-- request asked for.

local grants = Map.new(os.getenv("TILGANG_GRANTS_MAP"), Map._str)
local revoked = Map.new(os.getenv("TILGANG_REVOKED_MAP"), Map._str)
local resources = Map.new(os.getenv("TILGANG_RESOURCES_MAP"), Map._str)
local scopes = Map.new(os.getenv("TILGANG_SCOPES_MAP"), Map._str)

-- Well below what HAProxy buffers (tune.bufsize 16 KiB less headers and the rewrite reserve),
-- so a body this short was received whole: a longer one could hide parameters past the buffer.
local FORM_LIMIT = 8192

-- Parameters on the searched type itself, at any depth of a chain or _has.
local FILTERS = {
  _id = true, _lastUpdated = true, _tag = true, _profile = true, _security = true,
  _source = true, _text = true, _content = true, _language = true,
}
-- Parameters that shape the result, in the request itself only.
local RESULTS = {
  _sort = true, _count = true, _total = true, _summary = true, _elements = true,
  _format = true, _pretty = true, _at = true, _since = true, _offset = true,
}

local Refusal = {}

local function refuse(status, error, detail)
  error = error or "forbidden"
  return setmetatable({ status = status, error = error, detail = detail }, Refusal)
end

local function split(text, separators)
  local parts = {}
  for part in string.gmatch(text, "[^" .. separators .. "]+") do
    parts[#parts + 1] = part
  end
  return parts
end

-- Percent-decoding as the upstream will do it, once; nil for a broken escape. A name that still
-- holds a % after it (double encoding) is then refused as malformed.
local function decode(text)
  local at = 1
  while true do
    local percent = string.find(text, "%", at, true)
    if not percent then break end
    if not string.match(string.sub(text, percent + 1, percent + 2), "^%x%x$") then
      return nil
    end
    at = percent + 3
  end
  text = string.gsub(text, "%+", " ")
  return (string.gsub(text, "%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

-- May this request reach resource type `name`? nil when it may, else a refusal.
local function reach(ctx, name, parameter)
  if name == ctx.type then return nil end
  if ctx.reached[name] then return nil end
  if not string.match(name, "^[A-Z][A-Za-z]*$") then
    return refuse(403, nil, string.format(
      "The search parameter %s names %q, which is not a FHIR resource type.", parameter, name))
  end
  local service = resources:lookup(name)
  if service == nil then
    return refuse(403, nil, string.format(
      "The search parameter %s reaches %s, which the gateway does not serve.", parameter, name))
  end
  local key = table.concat({ ctx.environment, ctx.client, ctx.kommune, service, ctx.access }, "|")
  if grants:lookup(key) == nil or revoked:lookup(key) ~= nil then
    return refuse(403, nil, string.format(
      "The search parameter %s reaches %s: client %s has no %s access to %s for kommune %s in %s.",
      parameter, name, ctx.client, ctx.access, service, ctx.kommune, ctx.environment))
  end
  local scope = scopes:lookup(service .. "|" .. ctx.access)
  if scope == nil or not ctx.scopes[scope] then
    return refuse(403, "insufficient_scope", string.format(
      "The search parameter %s reaches %s: the access token's scope lacks %s.",
      parameter, name, tostring(scope)))
  end
  ctx.reached[name] = true
  return nil
end

local analyse

-- _include and _revinclude: Source:parameter[:Target], comma-separated values tolerated.
local function includes(ctx, base, modifier, value, parameter)
  if modifier ~= "" and modifier ~= ":iterate" and modifier ~= ":recurse" then
    return refuse(403, nil, string.format("The search parameter %s is not understood.", parameter))
  end
  for _, item in ipairs(split(value, ",")) do
    local parts = split(item, ":")
    if #parts < 2 or #parts > 3 or string.find(item, "::", 1, true) then
      return refuse(403, nil, string.format(
        "The search parameter %s is not Type:parameter[:TargetType].", parameter))
    end
    for _, part in ipairs(parts) do
      if string.find(part, "*", 1, true) then
        return refuse(403, nil, string.format(
          "The search parameter %s uses a wildcard (*): name each type it reaches.", parameter))
      end
    end
    local refusal = reach(ctx, parts[1], parameter)
    if refusal then return refusal end
    if parts[3] then
      refusal = reach(ctx, parts[3], parameter)
      if refusal then return refusal end
    elseif base == "_include" then
      return refuse(403, nil, string.format(
        "The search parameter %s does not name its target type: write %s:<TargetType>.",
        parameter, item))
    end
  end
  return nil
end

-- A _has or a chain: it must name the type it goes through (else refused with `unnamed`, a
-- format for the parameter), that type must be reachable, and its inner parameter is analysed
-- there as a filter.
local function through(ctx, target, inner, value, parameter, unnamed)
  if not target then
    return refuse(403, nil, string.format(unnamed, parameter))
  end
  local refusal = reach(ctx, target, parameter)
  if refusal then return refusal end
  return analyse(ctx, inner, value, false, parameter)
end

-- One parameter. `top` is false inside a chain or _has, where only filters make sense.
analyse = function(ctx, name, value, top, parameter)
  if not string.match(name, "^[A-Za-z0-9_.:-]+$") then
    return refuse(400, "bad_request", string.format(
      "The search parameter name %q is not a FHIR search parameter.", name))
  end
  local base, modifier = string.match(name, "^([^:.]*)(.*)$")
  if base == "_has" then
    local target, reference, inner = string.match(name, "^_has:([^:.]+):([^:.]+):(.+)$")
    return through(ctx, target, inner, value, parameter,
      "The search parameter %s is not _has:Type:reference:parameter.")
  end
  if base == "_include" or base == "_revinclude" then
    if not top or string.find(modifier, ".", 1, true) then
      return refuse(403, nil, string.format("The search parameter %s is not understood.", parameter))
    end
    return includes(ctx, base, modifier, value, parameter)
  end
  if base == "_type" and top and modifier == "" then
    for _, name in ipairs(split(value, ",")) do
      local refusal = reach(ctx, name, parameter)
      if refusal then return refusal end
    end
    return nil
  end
  if base == "_list" and top and modifier == "" then
    return reach(ctx, "List", parameter)
  end
  if base == "_contained" and top and modifier == "" and value == "false" then
    return nil
  end
  if base == "_containedType" and top and modifier == "" and value == "contained" then
    return nil
  end
  local head, tail = string.match(name, "^([^.]*)%.(.+)$")
  if head then
    -- A chain: reference:Type.parameter. Without the type it may reach any type the reference
    -- allows, which the gateway cannot tell: refused.
    local target = string.match(head, "^[^:]+:([A-Z][A-Za-z]*)$")
    return through(ctx, target, tail, value, parameter,
      "The chained search parameter %s does not name the type it chains through: write " ..
      "reference:Type.parameter.")
  end
  if string.sub(base, 1, 1) == "_" and not FILTERS[base] and not (top and RESULTS[base]) then
    return refuse(403, nil, string.format(
      "The search parameter %s is not offered through the gateway.", parameter))
  end
  return nil
end

-- Every parameter of a query string or form body. `&` and `;` both separate: an upstream that
-- splits on either sees no parameter this did not check.
local function parameters(ctx, text)
  for _, pair in ipairs(split(text, "&;")) do
    local raw_name, raw_value = string.match(pair, "^([^=]*)=?(.*)$")
    local name, value = decode(raw_name), decode(raw_value)
    if name == nil or value == nil then
      return refuse(400, "bad_request", "The query or form body has a broken percent-encoding.")
    end
    if name ~= "" then
      local parameter = name .. "=" .. value
      local refusal = analyse(ctx, name, value, true, parameter)
      if refusal then return refusal end
    end
  end
  return nil
end

local function form_body(ctx, txn)
  local size = txn.f:req_body_size() or 0
  local length = txn.f:req_body_len() or 0
  if size == 0 and length == 0 then return nil end
  local content_type, media_parameters = string.match(
    string.lower(txn.f:req_fhdr("content-type") or ""), "^%s*([^;%s]*)%s*(.*)$")
  local encoding = string.lower(txn.f:req_fhdr("content-encoding") or "identity")
  if content_type ~= "application/x-www-form-urlencoded" or encoding ~= "identity" then
    return refuse(415, "unsupported_media_type",
      "POST .../_search takes its parameters as application/x-www-form-urlencoded, " ..
      "uncompressed.")
  end
  -- The parameters are decoded as UTF-8 (here and by a FHIR server): a body in another
  -- charset could spell a name the gateway reads differently from the upstream.
  for parameter in string.gmatch(media_parameters, "[^;]+") do
    local name, value = string.match(parameter, "^%s*([^=%s]+)%s*=%s*(.-)%s*$")
    if name == "charset" then value = string.gsub(value, '^"(.*)"$', "%1") end
    if (name == nil and not string.match(parameter, "^%s*$"))
        or (name == "charset" and value ~= "utf-8") then
      return refuse(415, "unsupported_media_type",
        "The form body of _search is read as UTF-8: charset, when given, is utf-8.")
    end
  end
  if size > FORM_LIMIT or length ~= size then
    return refuse(413, "payload_too_large", string.format(
      "The form body of _search is limited to %d bytes.", FORM_LIMIT))
  end
  return parameters(ctx, txn.f:req_body() or "")
end

-- VKP's ServiceCodes: comma-separated, over any number of header lines, case and surrounding
-- whitespace ignored. Every code asked for must be held by the grant; the codes passed upstream
-- are those asked for, in the grant's order.
local function service_codes(ctx, txn)
  local lines = txn.http:req_get_headers()["servicecodes"]
  if lines == nil then return nil end
  local asked, count = {}, 0
  for _, line in pairs(lines) do
    for item in string.gmatch(line .. ",", "([^,]*),") do
      local code = string.upper(string.match(item, "^%s*(.-)%s*$"))
      if code ~= "" then
        if not string.match(code, "^[A-Z]+$") then
          return refuse(400, "bad_request", "ServiceCodes is a comma-separated list of codes.")
        end
        asked[code] = true
        count = count + 1
      end
    end
  end
  if count == 0 then
    return refuse(400, "bad_request", "ServiceCodes names no service code.")
  end
  local held, passed = {}, {}
  local value = txn:get_var("txn.grant_codes") or "-"
  for _, code in ipairs(split(value, ",")) do
    held[code] = true
    if asked[code] then passed[#passed + 1] = code end
  end
  for code in pairs(asked) do
    if not held[code] then
      return refuse(403, nil, string.format(
        "The grant does not hold service code %s (tjenstlig behov) for this client and kommune.",
        code))
    end
  end
  txn:set_var("txn.service_codes", table.concat(passed, ","))
  return nil
end

local function check(txn)
  local scope_words = {}
  for word in string.gmatch(txn:get_var("txn.scope") or "", "%S+") do
    scope_words[word] = true
  end
  local ctx = {
    environment = txn:get_var("txn.environment"),
    client = txn:get_var("txn.client_id"),
    kommune = txn:get_var("txn.kommune"),
    access = txn:get_var("txn.access"),
    type = txn:get_var("txn.resource_type"),
    scopes = scope_words,
    reached = {},
  }
  local query = txn.f:query()
  if query ~= nil and query ~= "" then
    local refusal = parameters(ctx, query)
    if refusal then return refusal end
  end
  if txn:get_var("txn.search_post") == 1 then
    local refusal = form_body(ctx, txn)
    if refusal then return refusal end
  end
  local if_none_exist = txn.f:req_fhdr("if-none-exist")
  if if_none_exist ~= nil then
    local refusal = parameters(ctx, (string.gsub(if_none_exist, "^%?", "")))
    if refusal then return refusal end
  end
  return service_codes(ctx, txn)
end

-- txn.fhir_verdict is set last: the configuration refuses a checked request without it (a
-- Lua error or timeout makes HAProxy carry on with the next rule, which must not mean "pass").
core.register_action("fhir_check", { "http-req" }, function(txn)
  local refusal = check(txn)
  if refusal then
    txn:set_var("txn.refusal_status", refusal.status)
    txn:set_var("txn.refusal_error", refusal.error)
    txn:set_var("txn.refusal_detail", refusal.detail)
  end
  txn:set_var("txn.fhir_verdict", refusal and "refused" or "passed")
end, 0)
