/*
 * The sticky bucket of `migrationpilot routing resolve`, computed by nginx itself (njs 0.7
 * and later), as `routing export --format nginx --sticky-key ...` sets it up:
 *
 *   $mp_key           the request's key, found by a `map`: the value of the request header
 *                     NAME, or of the first cookie NAME in the Cookie header(s), without the
 *                     spaces and tabs around it ("" without one)
 *   $mp_bucket_input  "<group>:<key>": the group id of the request's route ($mp_route), a
 *                     colon and the key, as the request carries it (UTF-8 or not)
 *   $mp_bucket        js_set $mp_bucket mp_routing.bucket (a cookie) or .bucket_once (the
 *                     header js_var $mp_key_header): murmur3_x86_32 of those bytes, seed 0,
 *                     % 100 + 1; "" without a key, or when the key header is sent more
 *                     than once
 *
 * A request without a bucket goes as `resolve` decides without a key. The Lua of HAProxy,
 * Envoy and Istio (migrationpilot.lua) decides exactly the same. Shipped with migrationpilot;
 * the export copies it as it is.
 */

var imul = Math.imul;

/* murmur3_x86_32 of a Buffer, seed 0, unsigned; written for njs's interpreter, in the fewest
 * operations: this is most of what the sticky export costs a request (docs/benchmarks.md). */
function murmur3(data) {
    var length = data.length;
    var blocks = length - (length % 4);
    var h = 0;
    var k;
    for (var i = 0; i < blocks; i += 4) {
        k = imul(data.readInt32LE(i), 0xcc9e2d51);
        h ^= imul((k << 15) | (k >>> 17), 0x1b873593);
        h = (h << 13) | (h >>> 19);
        h = (imul(h, 5) + 0xe6546b64) | 0;
    }
    k = 0;
    switch (length - blocks) {
    case 3:
        k ^= data[blocks + 2] << 16;
        /* falls through */
    case 2:
        k ^= data[blocks + 1] << 8;
        /* falls through */
    case 1:
        k = imul(k ^ data[blocks], 0xcc9e2d51);
        h ^= imul((k << 15) | (k >>> 17), 0x1b873593);
    }
    h ^= length;
    h = imul(h ^ (h >>> 16), 0x85ebca6b);
    h = imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
}

/* $mp_bucket with the key in a cookie. */
function bucket(r) {
    var input = r.rawVariables.mp_bucket_input;
    return input && input.length ? murmur3(input) % 100 + 1 : '';
}

/* $mp_bucket with the key in the header $mp_key_header: none when it is sent more than
 * once. njs joins a repeated header's values with commas in r.headersIn, so only a value
 * with a comma needs the headers counted. */
function bucket_once(r) {
    var input = r.rawVariables.mp_bucket_input;
    if (!input || !input.length) {
        return '';
    }
    var name = r.variables.mp_key_header;
    var joined = r.headersIn[name];
    if (joined && joined.indexOf(',') >= 0 && occurrences(r, name) > 1) {
        return '';
    }
    return murmur3(input) % 100 + 1;
}

function occurrences(r, name) {
    var count = 0;
    r.rawHeadersIn.forEach(function (header) {
        if (header[0].toLowerCase() === name) {
            count++;
        }
    });
    return count;
}

export default {bucket, bucket_once, murmur3};
