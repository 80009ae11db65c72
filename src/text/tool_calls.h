#pragma once
// Tool calls in model output. Each model family writes calls its own way; the chat template (and
// the vocabulary) says which:
//   Hermes  (Qwen2.5, Qwen3, Hermes-2-Pro): <tool_call>{"name": ..., "arguments": ...}</tool_call>,
//           several, anywhere in the output, text around them is content.
//   Mistral (v0.3, Nemo): [TOOL_CALLS] [{"name": ..., "arguments": ...}, ...] at the start.
//   Llama3  (3.1+): {"name": ..., "parameters": ...} as the whole output, possibly after
//           <|python_tag|>, several separated by ';' or whitespace.
//   Generic (any other template): one or more JSON objects {"name", "arguments"|"parameters"} as
//           the whole output.
// The parser is incremental: parse_tool_output(text, final=false) on a prefix of the output
// returns only what is certain (content that cannot be the start of a call, calls whose name is
// known, argument bytes already written), and every later prefix, and the final parse, extend it:
// content and each call's arguments only grow, calls are only appended. So streamed deltas (the
// differences between successive parses) reassemble exactly into the non-streamed result.
// Malformed calls are content; nothing here throws on any input.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace eight {

enum class ToolFormat { Generic, Llama3, Mistral, Hermes };

const char* tool_format_name(ToolFormat f);

// The format a model writes calls in, decided from its chat template's text (the markers it
// renders for assistant tool calls), then from its vocabulary's special tokens; Generic when
// neither names a known format.
// `has_token` says whether the vocabulary holds a token with that text.
ToolFormat detect_tool_format(const std::string& template_src,
                              const std::function<bool(std::string_view)>& has_token);

// Whether a chat template renders the `tools` variable at all (else the server describes the
// tools in a system message itself).
bool template_uses_tools(const std::string& template_src);

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // the arguments JSON exactly as the model wrote it ("{}" when absent)
};

struct ParsedOutput {
  std::string content;  // text outside calls
  std::vector<ParsedToolCall> calls;
};

// Whether `later` extends `earlier` (the incremental contract above): content and each call's
// arguments only grew, calls were only appended.
bool extends(const ParsedOutput& earlier, const ParsedOutput& later);

// Splits model output into content and tool calls. `final`: the text is the whole output (else
// a prefix, and undecided text is held back).
ParsedOutput parse_tool_output(ToolFormat f, std::string_view text, bool final);

}  // namespace eight
