"""Modal dialogs: confirm a destructive action, submit a graph, pick from a list, key help."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option


class ConfirmScreen(ModalScreen[bool]):
    """Yes / no for a destructive action. ``y`` confirms, ``n`` or ``esc`` cancels."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n", "answer(False)", "No"),
                Binding("escape", "answer(False)", "Cancel", show=False)]

    def __init__(self, question: str, detail: str = "", danger: str = "Yes") -> None:
        super().__init__(classes="dialog")
        self.question, self.detail, self.danger = question, detail, danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="danger"):
            yield Label(self.question, id="question")
            if self.detail:
                yield Static(self.detail, id="detail")
            with Horizontal(id="buttons"):
                yield Button(f"{self.danger} (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PickScreen(ModalScreen[str | None]):
    """Choose one of ``options`` (value, label); ``esc`` cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, options: list[tuple[str, str]], empty: str = "") -> None:
        super().__init__(classes="dialog")
        self.title_text, self.options, self.empty = title, options, empty

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="question")
            if self.options:
                yield OptionList(*[Option(label, id=value) for value, label in self.options],
                                 id="choices")
            else:
                yield Static(self.empty or "nothing to choose from", id="detail")
            yield Static(Text("enter chooses · esc cancels", style="dim"))

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SubmitScreen(ModalScreen[str | None]):
    """A path input; the document is validated before it is submitted, errors shown inline.

    ``validate(path)`` raises with a message on an invalid document; ``submit(path)`` returns
    the line to show. Dismisses with that line."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, validate: Callable[[str], Awaitable[Any]],
                 submit: Callable[[str], Awaitable[str]], value: str = "") -> None:
        super().__init__(classes="dialog")
        self.validate_doc, self.submit_doc, self.value = validate, submit, value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Submit a graph document (YAML or JSON)", id="question")
            yield Input(value=self.value, placeholder="path/to/graph.yaml", id="path")
            yield Static("", id="error")
            yield Static(Text("enter validates and submits · esc cancels", style="dim"))

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.check(event.value.strip(), submit=True)

    @work(exclusive=True, group="submit")
    async def check(self, path: str, submit: bool) -> None:
        error = self.query_one("#error", Static)
        if not path:
            error.update(Text("a path is required", style="bold #ff5f5f"))
            return
        try:
            doc = await self.validate_doc(path)
            if not submit:
                error.update(Text(f"valid: {doc['name']}", style="#5faf5f"))
                return
            line = await self.submit_doc(path)
        except Exception as exc:  # noqa: BLE001 - every failure is shown inline
            error.update(Text(str(exc) or type(exc).__name__, style="bold #ff5f5f"))
            error.add_class("shown")
            return
        self.dismiss(line)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every key of the current screen and the app, with what it does."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__(classes="dialog")
        self.sections = sections

    def compose(self) -> ComposeResult:
        text = Text()
        for title, rows in self.sections:
            text.append(f"{title}\n", style="bold #5fafff")
            for key, description in rows:
                text.append(f"  {key:>10}  ", style="bold #d7af5f")
                text.append(f"{description}\n")
            text.append("\n")
        with Vertical(id="dialog", classes="help"):
            yield Label("Keys", id="question")
            with VerticalScroll():
                yield Static(text, id="keys")
            yield Static(Text("esc closes · ctrl+p or : opens the command palette",
                              style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
