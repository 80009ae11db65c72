#pragma once
// JSON schema → GBNF (grammar.h parses the result). Supported: type (and type arrays), object
// properties with required/optional ones, additionalProperties (false, true/absent = any extra
// key, or a schema), array items with minItems/maxItems (and prefixItems), enum, const,
// anyOf/oneOf, allOf of one schema, $ref into $defs/definitions, integer and number bounds
// (minimum/maximum/exclusiveMinimum/exclusiveMaximum), string minLength/maxLength, pattern (a regex
// subset: classes, quantifiers, groups, alternation, anchors) and the formats date, time,
// date-time and uuid. Annotations (title, description, default, examples, $schema, $id, ...) are
// ignored. Anything else throws Error "[json-schema] <path>: '<keyword>' is not supported".
//
// The grammar bounds whitespace: at most one space, or one newline and up to 20 spaces/tabs of
// indentation, between tokens, so a model cannot loop on whitespace.
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace eight::text {

// Rules are named `<root>` and `<root>-...`, so several schemas can live in one grammar (a tool
// call per function: `root ::= call-a | call-b` after compiling each with its own root name).
std::string json_schema_to_gbnf(const nlohmann::json& schema, std::string_view root = "root");
// Any JSON object (response_format json_object), its rules named the same way.
std::string json_object_gbnf(std::string_view root = "root");

}  // namespace eight::text
