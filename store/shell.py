"""Shell commands with references: values reach the shell without ever being parsed by it.

A shell task's command may contain references (``echo "x=${inputs.x}"``). Their values are
never pasted into the command text: each reference is replaced by a parameter expansion of an
environment variable (``WGOPS_V1``, ``WGOPS_V2`` ...) that the worker sets to the value's text.
The shell then expands the variable where the reference stood, and an expansion's result is
never parsed again as shell syntax: ``$(touch x)``, backquotes, quotes, ``;`` or newlines in a
value stay text. How each quoting context reads (the ``/bin/sh`` that runs the command):

==================================  =====================================================
where the reference stands          what replaces it
==================================  =====================================================
a plain word (``echo ${x}``)        ``"${WGOPS_V1}"`` — quoted: no word splitting, no globbing
inside ``"..."``                    ``${WGOPS_V1}`` — double quotes already stop splitting
inside ``'...'``                    ``'"${WGOPS_V1}"'`` — out of the quotes, expanded, back in
``$(...)``, backquotes              as a plain word inside them (``\\"`` inside ``"`...`"``)
a here-document (``<<EOF``)         ``${WGOPS_V1}`` — expanded, never ends the document
a comment (``# ${x}``)              ``${WGOPS_V1}`` (the shell ignores it)
==================================  =====================================================

Refused when the document is validated, naming the task: a reference inside arithmetic
(``$((...))``, which evaluates text as an expression), inside a quoted here-document
(``<<'EOF'``, which expands nothing), and a command with an unterminated quote. A command that
itself evaluates its arguments (``eval``, ``sh -c``, ``python -c``) evaluates the value as it
would any argument: that is what it was asked to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wgops.store.refs import REF_RE, lookup, parse_ref

ENV_PREFIX = "WGOPS_V"
MAX_VALUE_BYTES = 120_000       # an environment string is at most 128 KiB (Linux MAX_ARG_STRLEN)
_BLANK = " \t"
_WORD_END = " \t\n;&|()<>"


class ShellSyntaxError(ValueError):
    """A reference stands where its value could not be passed safely (or the quoting is
    broken); the message says where and what to do instead."""


@dataclass(frozen=True)
class ShellCommand:
    """A command ready to run: ``template`` (the text given to ``/bin/sh -c``) and, for each
    variable it expands, the reference whose value it gets."""

    template: str
    variables: dict[str, str]           # WGOPS_Vn -> the reference's text (``inputs.x``)

    def environment(self, values: dict[str, Any]) -> dict[str, str]:
        """The variables' values (text; JSON for what is not a string). Raises
        :class:`~wgops.store.refs.MissingValue` for a missing value and ValueError for one the
        environment cannot carry (a NUL byte, over 128 KiB)."""
        env: dict[str, str] = {}
        for name, ref in self.variables.items():
            value = lookup(parse_ref(ref), values)
            text = value if isinstance(value, str) else json.dumps(value)
            if "\x00" in text:
                raise ValueError(f"${{{ref}}} contains a NUL byte, which a shell value cannot")
            if len(text.encode()) > MAX_VALUE_BYTES:
                raise ValueError(f"${{{ref}}} is {len(text.encode())} bytes; a shell task takes "
                                 f"values up to {MAX_VALUE_BYTES} (pass larger data in a file)")
            env[name] = text
        return env


def compile_command(command: str) -> ShellCommand:
    """Place every reference of ``command`` (see the module's table); raises
    :class:`ShellSyntaxError`."""
    pieces: list[str] = []
    variables: dict[str, str] = {}
    by_ref: dict[str, str] = {}
    last = 0
    for start, end, context in _Scanner(command).references():
        ref = REF_RE.match(command, start)
        assert ref is not None
        text = ref.group(1).strip()
        name = by_ref.get(text)
        if name is None:
            name = by_ref[text] = f"{ENV_PREFIX}{len(by_ref) + 1}"
            variables[name] = text
        pieces += [command[last:start], _REPLACEMENT[context].format(name)]
        last = end
    pieces.append(command[last:])
    return ShellCommand("".join(pieces), variables)


_REPLACEMENT = {
    "plain": '"${{{}}}"',
    "dq": "${{{}}}",
    "sq": "'\"${{{}}}\"'",
    "bq_dq": '\\"${{{}}}\\"',
    "heredoc": "${{{}}}",
    "comment": "${{{}}}",
}


class _Scanner:
    """Walks a command keeping track of its quoting (a stack of contexts) and yields where
    each reference stands."""

    def __init__(self, text: str):
        self.text = text
        self.i = 0
        self.stack = ["plain"]
        self.word_start = True
        self.heredocs: list[tuple[str, bool, bool]] = []   # (delimiter, quoted, strip tabs)
        self.arith_depth = 0
        self.found: list[tuple[int, int, str]] = []       # (start, end, context), in order

    def references(self) -> list[tuple[int, int, str]]:
        text = self.text
        while self.i < len(text):
            ref = REF_RE.match(text, self.i) if text.startswith("${", self.i) else None
            if ref is not None:
                self.found.append((ref.start(), ref.end(), self._context_for_reference()))
                self.i = ref.end()
                self.word_start = False
                continue
            self._step()
        if self.stack[-1] in ("sq", "dq", "bq", "bq_dq"):
            what = {"sq": "single quote", "dq": "double quote"}.get(self.stack[-1], "backquote")
            raise ShellSyntaxError(f"the command has an unterminated {what}")
        return self.found

    def _context_for_reference(self) -> str:
        top = self.stack[-1]
        if top == "arith":
            raise ShellSyntaxError("a reference inside $((...)) would be evaluated as "
                                   "arithmetic; compute the value in a task instead")
        if top in ("plain", "subst", "bq"):
            return "plain"
        return top

    def _push(self, context: str, width: int = 1) -> None:
        self.stack.append(context)
        self.i += width

    def _pop(self) -> None:
        self.stack.pop()
        self.i += 1

    def _step(self) -> None:
        top = self.stack[-1]
        char = self.text[self.i]
        if top == "sq":
            if char == "'":
                self._pop()
            else:
                self.i += 1
        elif top == "dq":
            self._in_double_quotes(char)
        elif top == "arith":
            self._in_arithmetic(char)
        else:
            self._in_words(char, top)

    def _in_double_quotes(self, char: str) -> None:
        text, i = self.text, self.i
        if char == "\\":
            self.i += 2
        elif char == '"':
            self._pop()
        elif char == "`":
            self._push("bq_dq")
        elif text.startswith("$((", i):
            self._push("arith", 3)
        elif text.startswith("$(", i):
            self._push("subst", 2)
        else:
            self.i += 1

    def _in_arithmetic(self, char: str) -> None:
        if self.text.startswith("))", self.i) and self.arith_depth == 0:
            self.stack.pop()
            self.i += 2
            return
        if char == "(":
            self.arith_depth += 1
        elif char == ")":
            self.arith_depth -= 1
        self.i += 1

    def _in_words(self, char: str, top: str) -> None:
        """Plain words, and the commands inside ``$(...)`` and backquotes."""
        text, i = self.text, self.i
        start_of_word = self.word_start
        self.word_start = char in _WORD_END
        if char == "\\":
            self.i += 2
        elif char == "'":
            self._push("sq")
        elif char == '"':
            self._push("dq")
        elif char == "`" and top in ("bq", "bq_dq"):
            self._pop()
        elif char == "`":
            self._push("bq")
        elif text.startswith("$((", i):
            self._push("arith", 3)
        elif text.startswith("$(", i):
            self._push("subst", 2)
        elif char == ")" and top == "subst":
            self._pop()
        elif char == "#" and start_of_word:
            self._comment()
        elif text.startswith("<<", i) and not text.startswith("<<<", i):
            self._heredoc_operator()
        elif char == "\n" and self.heredocs:
            self.i += 1
            self._heredoc_bodies()
        else:
            self.i += 1

    def _comment(self) -> None:
        end = self.text.find("\n", self.i)
        end = len(self.text) if end < 0 else end
        self.stack.append("comment")
        self._references_in(self.i, end)
        self.stack.pop()
        self.i = end

    def _heredoc_operator(self) -> None:
        text = self.text
        self.i += 2
        strip = text.startswith("-", self.i)
        if strip:
            self.i += 1
        while self.i < len(text) and text[self.i] in _BLANK:
            self.i += 1
        word, quoted = [], False
        while self.i < len(text) and text[self.i] not in _WORD_END:
            char = text[self.i]
            if char in "'\"":
                close = text.find(char, self.i + 1)
                if close < 0:
                    raise ShellSyntaxError("a here-document's delimiter has an unterminated "
                                           "quote")
                word.append(text[self.i + 1:close])
                quoted = True
                self.i = close + 1
            elif char == "\\":
                word.append(text[self.i + 1:self.i + 2])
                quoted = True
                self.i += 2
            else:
                word.append(char)
                self.i += 1
        self.heredocs.append(("".join(word), quoted, strip))

    def _heredoc_bodies(self) -> None:
        """The bodies of the here-documents opened on the line that just ended."""
        text = self.text
        for delimiter, quoted, strip in self.heredocs:
            while self.i < len(text):
                end = text.find("\n", self.i)
                end = len(text) if end < 0 else end
                line = text[self.i:end]
                if (line.lstrip("\t") if strip else line) == delimiter:
                    self.i = min(len(text), end + 1)
                    break
                if quoted and REF_RE.search(line):
                    raise ShellSyntaxError("a reference inside a quoted here-document "
                                           f"(<<'{delimiter}') is not expanded; unquote its "
                                           "delimiter")
                self.stack.append("heredoc")
                self._references_in(self.i, end)
                self.stack.pop()
                self.i = min(len(text), end + 1)
        self.heredocs = []

    def _references_in(self, start: int, end: int) -> None:
        """References between ``start`` and ``end`` in the current (flat) context: a comment
        or a here-document line."""
        for ref in REF_RE.finditer(self.text, start, end):
            self.found.append((ref.start(), ref.end(), self.stack[-1]))
