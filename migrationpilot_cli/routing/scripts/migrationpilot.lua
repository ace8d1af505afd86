-- The sticky bucket of `migrationpilot routing resolve`, in Lua: for HAProxy (Lua 5.3 and
-- later, `lua-load-per-thread`: registers the sample fetch `lua.mp_bucket`), for nginx
-- (lua-nginx-module, LuaJIT: `require("migrationpilot").nginx` in `set_by_lua_block`) and
-- for Envoy and Istio (LuaJIT: `migrationpilot routing export --format envoy|istio
-- --sticky-key` inlines this file into its Lua HTTP filter). Shipped with migrationpilot;
-- the exports copy it as it is.
--
--   bucket = murmur3_x86_32("<group>:<key>", seed 0) % 100 + 1
--
-- over the bytes of the key as the request carries them (UTF-8 or not), where the key is
--   header:NAME  the value of the request header NAME, sent exactly once;
--   cookie:NAME  the value of the first cookie NAME in the Cookie header(s);
-- without its surrounding spaces and tabs. A request without the key, with an empty one or
-- with the key header repeated has no bucket: it goes as `resolve` decides without a key.

local M = {}

-- murmur3_x86_32, seed 0, unsigned: twice, each in what its Lua does fast.
if _VERSION == "Lua 5.1" then
  -- LuaJIT (Envoy, Istio): the `bit` library, whose results are signed 32-bit numbers; a
  -- product is split in two so that a double holds it exactly.
  local bit = require("bit")
  local band, bxor, rol, rshift, tobit = bit.band, bit.bxor, bit.rol, bit.rshift, bit.tobit

  local function mul(a, b)
    return tobit(a * band(b, 0xffff) + tobit(a * rshift(b, 16)) * 65536)
  end

  local function scramble(k)
    return mul(rol(mul(k, 0xcc9e2d51), 15), 0x1b873593)
  end

  function M.murmur3(data)
    local h, length = 0, #data
    local blocks = length - length % 4
    for i = 1, blocks, 4 do
      local b1, b2, b3, b4 = string.byte(data, i, i + 3)
      h = bxor(h, scramble(b1 + b2 * 256 + b3 * 65536 + b4 * 16777216))
      h = tobit(mul(rol(h, 13), 5) + 0xe6546b64)
    end
    if length > blocks then
      local k = 0
      for i = length, blocks + 1, -1 do
        k = k * 256 + string.byte(data, i)
      end
      h = bxor(h, scramble(k))
    end
    h = bxor(h, length)
    h = mul(bxor(h, rshift(h, 16)), 0x85ebca6b)
    h = mul(bxor(h, rshift(h, 13)), 0xc2b2ae35)
    return bxor(h, rshift(h, 16)) % 4294967296
  end
else
  -- Lua 5.3 and later (HAProxy): 64-bit integers and their operators (a product wraps, its
  -- low 32 bits are exact), compiled from a string: LuaJIT cannot parse them.
  M.murmur3 = load([[
    local unpack, byte = string.unpack, string.byte
    return function(data)
      local h, length = 0, #data
      local blocks = length - length % 4
      for i = 1, blocks, 4 do
        local k = (unpack("<I4", data, i) * 0xcc9e2d51) & 0xffffffff
        k = (((k << 15) | (k >> 17)) * 0x1b873593) & 0xffffffff
        h = h ~ k
        h = ((h << 13) | (h >> 19)) & 0xffffffff
        h = (h * 5 + 0xe6546b64) & 0xffffffff
      end
      if length > blocks then
        local k = 0
        for i = length, blocks + 1, -1 do
          k = (k << 8) | byte(data, i)
        end
        k = (k * 0xcc9e2d51) & 0xffffffff
        h = h ~ ((((k << 15) | (k >> 17)) * 0x1b873593) & 0xffffffff)
      end
      h = h ~ length
      h = ((h ~ (h >> 16)) * 0x85ebca6b) & 0xffffffff
      h = ((h ~ (h >> 13)) * 0xc2b2ae35) & 0xffffffff
      return h ~ (h >> 16)
    end
  ]])()
end

-- The bucket of "<group>:<key>", already joined.
function M.bucket_of(input)
  return M.murmur3(input) % 100 + 1
end

function M.bucket(group, key)
  return M.bucket_of(group .. ":" .. key)
end

local function trimmed(text)
  return string.match(text, "^[ \t]*(.-)[ \t]*$")
end

-- The value of the first cookie `name` in a Cookie header ("a=1; b=2"), or nil.
function M.cookie(header, name)
  for pair in string.gmatch(header, "[^;]+") do
    local found, value = string.match(trimmed(pair), "^([^=]*)=(.*)$")
    if found == name then
      return value
    end
  end
  return nil
end

-- The key, from a request's header values: `values(name)` gives a list of every value of
-- the header `name` (lower case), in the order sent. nil when the request has none.
function M.key(kind, name, values)
  local value
  if kind == "header" then
    local sent = values(name)
    value = #sent == 1 and sent[1] or nil
  else
    value = M.cookie(table.concat(values("cookie"), "; "), name)
  end
  value = value and trimmed(value)
  if value == nil or value == "" then
    return nil
  end
  return value
end

-- Whether the path's segments from the i-th on match the pattern's from the j-th on:
-- '*' is one non-empty segment, '**' any number of segments, anything else itself.
local function matches(pattern, j, segments, i)
  local wanted = pattern[j]
  if wanted == nil then
    return segments[i] == nil
  end
  if wanted == "**" then
    for next_i = i, #segments + 1 do
      if matches(pattern, j + 1, segments, next_i) then
        return true
      end
    end
    return false
  end
  local got = segments[i]
  if got == nil or (wanted == "*" and got == "") or (wanted ~= "*" and wanted ~= got) then
    return false
  end
  return matches(pattern, j + 1, segments, i + 1)
end

-- "/a/b/" -> {"a", "b", ""}; the pattern "/" is {""}.
local function split(path)
  local segments, start = {}, 2
  while true do
    local slash = string.find(path, "/", start, true)
    segments[#segments + 1] = string.sub(path, start, (slash or 0) - 1)
    if not slash then
      return segments
    end
    start = slash + 1
  end
end

-- The group id of the first of `routes` ({{segments, group}, ...}, in precedence order)
-- whose pattern matches `path` (as sent, without the query string), or nil.
function M.route(routes, path)
  if string.sub(path, 1, 1) ~= "/" then
    return nil
  end
  local segments = split(path)
  for _, route in ipairs(routes) do
    if matches(route[1], 1, segments, 1) then
      return route[2]
    end
  end
  return nil
end

-- Every value of one request header in Envoy, in the order sent (Envoy before getAtIndex:
-- its values joined, as one).
local function envoy_values(headers, name)
  if headers.getNumValues == nil then
    return { headers:get(name) }
  end
  local sent = {}
  for i = 0, headers:getNumValues(name) - 1 do
    sent[#sent + 1] = headers:getAtIndex(name, i)
  end
  return sent
end

-- Envoy and Istio (envoy_on_request): sets the request header `header` to the bucket of the
-- request's route and key, and removes the one a client may have sent; a request without a
-- key (or outside every route) goes without. Envoy then routes on that header.
function M.envoy(handle, routes, kind, name, header)
  local headers = handle:headers()
  local group = M.route(routes, string.match(headers:get(":path") or "", "^[^?#]*"))
  local key = group and M.key(kind, name, function(wanted)
    return envoy_values(headers, wanted)
  end)
  headers:remove(header)
  if key then
    headers:add(header, tostring(M.bucket(group, key)))
  end
  if handle.clearRouteCache then
    handle:clearRouteCache()
  end
end

-- nginx: `set_by_lua_block $mp_bucket { return require("migrationpilot").nginx(...) }`,
-- given $mp_bucket_input ("<group>:<key>", found by nginx's own maps; "" when the route does
-- not split or the request has no key) and, for a key in a header, the header's name. The
-- bucket (a number: nginx makes it a string faster than tostring); "" without a key, or when
-- the key header is sent more than once (nginx's $http_NAME is the first of them).
function M.nginx(input, header)
  if input == "" or (header and type(ngx.req.get_headers(0)[header]) == "table") then
    return ""
  end
  return M.bucket_of(input)
end

-- HAProxy: `http-request set-var(txn.mp_bucket) lua.mp_bucket(header,x-user-id)` sets the
-- bucket of the request's route (the variable txn.mp_route, its group id) and key, as a
-- string ("" without a key, as nginx's $mp_bucket).
if type(core) == "table" and core.register_fetches then
  core.register_fetches("mp_bucket", function(txn, kind, name)
    local group = txn:get_var("txn.mp_route")
    local key = group and M.key(kind, name, function(header)
      local sent = {}
      for i = 1, txn.f:req_fhdr_cnt(header) do
        sent[i] = txn.f:req_fhdr(header, i)
      end
      return sent
    end)
    return key and tostring(M.bucket(group, key)) or ""
  end)
end

return M
