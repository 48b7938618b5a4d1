"""The vault screen: facets, the filtered list, details, live audit and TOTP codes.

Heavy work (decrypting every credential, verifying the audit chain) runs in thread
workers; everything that touches widgets runs on the event loop. Values appear only on
request: a reveal hides itself after ``reveal_seconds``; a copy is cleared from the
clipboard after ``clipboard_clear_seconds``. Both are audited by the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import AegisError
from aegis_tui.core.inventory import Inventory, load_inventory
from aegis_tui.core.lifecycle.compromise import recover
from aegis_tui.core.lifecycle.review import REVIEW_INTERVAL_DAYS, last_review_age_days
from aegis_tui.core.lifecycle.rotation import policy_of
from aegis_tui.core.models import Credential, Health, Kind, Status
from aegis_tui.core.search import FuzzyFilter
from aegis_tui.core.secret import Secret
from aegis_tui.tui.messages import CredentialChosen, CredentialHighlighted, FacetChosen
from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from aegis_tui.tui.screens.credential_form_modal import CredentialDraft, CredentialFormModal
from aegis_tui.tui.screens.destroy_modal import DestroyModal
from aegis_tui.tui.screens.grants_screen import GrantsScreen
from aegis_tui.tui.screens.incidents_screen import IncidentsScreen
from aegis_tui.tui.screens.leaks_screen import LeaksScreen
from aegis_tui.tui.screens.review_screen import ReviewScreen
from aegis_tui.tui.screens.rotate_modal import Rotation, RotateModal
from aegis_tui.tui.screens.rotation_screen import RotationScreen
from aegis_tui.tui.screens.sessions_screen import SessionsScreen
from aegis_tui.tui.widgets.audit_panel import AuditPanel
from aegis_tui.tui.widgets.credential_list import CredentialList
from aegis_tui.tui.widgets.detail_panel import DetailPanel
from aegis_tui.tui.widgets.sidebar import Sidebar
from aegis_tui.tui.widgets.totp_panel import TotpPanel

if TYPE_CHECKING:
    from aegis_tui.tui.app import AegisApp

REVIEW_DUE = "⚑ access review due — press V"
# Operations written by other processes that change what the list shows.
_CHANGING_OPERATIONS = {"add", "rotate", "revoke", "destroy", "edit", "status.exposed", "status.active"}
_NEEDS_SELECTION = {"reveal", "copy", "copy_totp", "rotate", "revoke", "destroy", "edit", "compromised"}


class VaultScreen(Screen[None]):
    BINDINGS = [
        Binding("a", "add", "Add", id="vault.add", tooltip="Add a credential"),
        Binding("e", "edit", "Edit", id="vault.edit", tooltip="Edit the selected credential's details"),
        Binding("r", "reveal", "Reveal", id="vault.reveal", tooltip="Show the value until it hides itself"),
        Binding("c", "copy", "Copy", id="vault.copy", tooltip="Copy the value; the clipboard is cleared later"),
        Binding("t", "copy_totp", "Copy code", id="vault.copy_totp", tooltip="Copy the current TOTP code"),
        Binding("o", "rotate", "Rotate", id="vault.rotate", tooltip="Give the credential a new value"),
        Binding("x", "revoke", "Revoke", id="vault.revoke", tooltip="Stop handing the credential out"),
        Binding("D", "destroy", "Destroy", id="vault.destroy", show=False, tooltip="Delete it and its history"),
        Binding("slash", "focus_filter", "Filter", id="vault.filter", tooltip="Filter as you type"),
        Binding("s", "sort", "Sort", id="vault.sort", tooltip="Change the sort column"),
        Binding("A", "grants", "Grants", id="vault.grants", tooltip="What agents may use; revoke a grant"),
        Binding("S", "sessions", "Sessions", id="vault.sessions", show=False, tooltip="Agent sessions; end one"),
        Binding("R", "rotation", "Rotation", id="vault.rotation", show=False,
                tooltip="What is due or overdue for rotation, and expiring; rotate it"),
        Binding("exclamation_mark", "compromised", "Compromised", id="vault.compromised", show=False,
                tooltip="It leaked: mark exposed, revoke its grants, rotate it, open an incident"),
        Binding("L", "leaks", "Leaks", id="vault.leaks", show=False, tooltip="Where the vault's values were found"),
        Binding("I", "incidents", "Incidents", id="vault.incidents", show=False,
                tooltip="Compromise incidents: timeline, root cause, prevention"),
        Binding("V", "review", "Review", id="vault.review", show=False,
                tooltip="Quarterly access review: keep, rotate, revoke or narrow each credential"),
        Binding("escape", "clear_filter", "Clear", id="vault.clear", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._inventory = Inventory([], {}, [])
        self._filter = FuzzyFilter([])
        self._facet: tuple[str, str | None] = ("all", None)
        self._revealed: tuple[str, int] | None = None  # (credential id, seconds left)
        self._reveal_timer: Timer | None = None
        self._clipboard_timer: Timer | None = None
        self._value_text = ""
        self._keep: Credential | None = None  # where the cursor goes after the next reload
        self._seeds: dict[str, tuple[int, Secret]] = {}  # TOTP seeds by credential id: (version, seed)

    @property
    def aegis(self) -> AegisApp:
        return cast("AegisApp", self.app)

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.aegis.vault)

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="top-bar")
        with Horizontal(id="main-row"):
            yield Sidebar(id="sidebar")
            with Vertical(id="center"):
                yield Input(placeholder="/ filter: name, service, context, tag…", id="filter")
                yield CredentialList(self.aegis.clock, id="credential-list")
            yield DetailPanel(id="detail")
        with Horizontal(id="bottom-row"):
            yield AuditPanel(id="audit")
            yield TotpPanel(self.aegis.clock, id="totp")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sidebar", Sidebar).border_title = "facets"
        self.query_one(DetailPanel).clear()
        self.query_one(CredentialList).focus()
        self._top_bar()
        self.reload()
        self.check_review()
        if self.aegis.live:
            self.set_interval(1.0, self._tick)

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")

    # -- loading ----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load")
    def reload(self) -> None:
        """Decrypt everything off the event loop, then hand the result to the widgets."""
        inventory = load_inventory(self.aegis.vault)
        known = self._seeds
        seeds: dict[str, tuple[int, Secret]] = {}
        for c in inventory.credentials:
            if c.kind is Kind.TOTP and c.status is not Status.REVOKED:
                cached = known.get(c.id)
                # Decrypt (and audit) a seed once per version, not on every reload.
                seeds[c.id] = cached if cached and cached[0] == c.current_version else (
                    c.current_version, self.credentials.reveal(c.name, purpose="tui.totp"))
        self.app.call_from_thread(self._loaded, inventory, seeds)

    def _loaded(self, inventory: Inventory, seeds: dict[str, tuple[int, Secret]]) -> None:
        keep, self._keep = self._keep or self.query_one(CredentialList).current, None
        self._inventory = inventory
        self._filter = FuzzyFilter(inventory.credentials)
        self.query_one(Sidebar).show_counts(inventory.credentials, self.aegis.clock())
        audit = self.query_one(AuditPanel)
        audit.add_entries(entry for entry in inventory.recent_audit[-500:] if entry.seq > audit.last_seq)
        self._seeds = seeds
        names = {c.id: c.name for c in inventory.credentials}
        self.query_one(TotpPanel).set_seeds([(names[cid], seed) for cid, (_, seed) in seeds.items()])
        self._apply_filter(keep)
        self._top_bar()
        self.verify_audit()

    @work(thread=True, exclusive=True, group="verify")
    def verify_audit(self) -> None:
        report = self.aegis.vault.audit.verify()
        if report.ok:
            text = Content.assemble(("✓ chain verified", "$success"), (f" · {report.entries} entries", "$text-muted"))
        else:
            text = Content.assemble(("✖ ", "$error"), (report.problems[0], "$error"))
        self.app.call_from_thread(self.query_one(AuditPanel).set_status, text)

    @work(thread=True, exclusive=True, group="review-due")
    def check_review(self) -> None:
        """Is an access review due? Asked on unlock and after a review, not on every reload:
        it reads the stored reviews, which is cheap but not free."""
        try:
            age = last_review_age_days(self.aegis.vault, self.aegis.clock())
        except AegisError:
            return  # locked meanwhile: the lock takes this screen away
        self.app.call_from_thread(self._review_checked, age is None or age > REVIEW_INTERVAL_DAYS)

    def _review_checked(self, due: bool) -> None:
        """The list's frame carries the reminder: the top bar is full on most terminals."""
        self.query_one(CredentialList).border_subtitle = Content.styled(REVIEW_DUE, "bold $warning") if due else ""

    def _apply_filter(self, keep: Credential | None = None) -> None:
        query = self.query_one("#filter", Input).value
        rows = self._filter.apply(query)
        kind, value = self._facet
        now = self.aegis.clock()
        if kind == "context":
            rows = [c for c in rows if (c.context or "(none)") == value]
        elif kind == "service":
            rows = [c for c in rows if (c.service or "(none)") == value]
        elif kind == "health":
            rows = [c for c in rows if c.health(now) == value]
        listing = self.query_one(CredentialList)
        listing.set_rows(rows, self._inventory.last_used, keep=keep or listing.current)
        listing.border_title = f"{len(rows)} of {len(self._inventory.credentials)}"
        if not rows:
            self.query_one(DetailPanel).clear()

    def _top_bar(self) -> None:
        now = self.aegis.clock()
        healths = [c.health(now) for c in self._inventory.credentials]
        parts: list[str | tuple[str, str]] = [(" ◆ aegis-vault ", "bold $primary"), ("· ", "$text-muted"),
                                              ("unlocked", "$success")]
        broker = self.aegis.broker_status
        if broker is not None:
            parts += [(" · ", "$text-muted"), broker]
        parts.append((f" · {len(healths)} credentials", "$text-muted"))
        for health in (Health.OVERDUE, Health.EXPOSED, Health.EXPIRING):
            count = healths.count(health)
            if count:
                parts += [(" · ", "$text-muted"), (f"{health.glyph} {count} {health}", "$warning")]
        by_hand = sum(1 for c, h in zip(self._inventory.credentials, healths)
                      if h in (Health.DUE, Health.OVERDUE) and policy_of(c).method == "manual")
        if by_hand:
            parts += [(" · ", "$text-muted"), (f"✎ {by_hand} to rotate by hand — press R", "bold $warning")]
        # The path goes last: on a narrow terminal it is what gets cut, not the counts.
        parts.append((f" · {self.aegis.vault_label}", "$text-muted"))
        self.query_one("#top-bar", Static).update(Content.assemble(*parts))

    def broker_changed(self) -> None:
        """The app's broker started, stopped, or its queue moved: the top bar says so."""
        if self.is_mounted:
            self._top_bar()

    # -- live updates -------------------------------------------------------------------------
    def _tick(self) -> None:
        self.query_one(TotpPanel).tick()
        self._tick_reveal()
        audit = self.query_one(AuditPanel)
        fresh = list(self.aegis.vault.audit.entries(after_seq=audit.last_seq))
        if fresh:
            audit.add_entries(fresh)
            mine = self.aegis.vault.actor.pid
            if any(e.operation in _CHANGING_OPERATIONS and e.actor.get("pid") != mine for e in fresh):
                self.reload()

    # -- selection ---------------------------------------------------------------------------
    @on(CredentialHighlighted)
    def _highlighted(self, event: CredentialHighlighted) -> None:
        self._hide_value()
        credential = event.credential
        if credential is None:
            self.query_one(DetailPanel).clear()
            return
        try:
            versions = self.credentials.versions(credential.name)
        except AegisError:
            self.reload()
            return
        audit = [e for e in self.query_one(AuditPanel).entries if e.target == credential.name]
        last_used = self._inventory.last_used.get(credential.name.casefold())
        self.query_one(DetailPanel).show(credential, versions, audit, last_used, self.aegis.clock())
        self.refresh_bindings()

    @on(CredentialChosen)
    def _chosen(self, event: CredentialChosen) -> None:
        self.app.action_command_palette()

    @on(FacetChosen)
    def _facet_chosen(self, event: FacetChosen) -> None:
        self._facet = (event.kind, event.value)
        self._apply_filter()
        self.query_one(CredentialList).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._apply_filter()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.query_one(CredentialList).focus()

    @property
    def selected(self) -> Credential | None:
        return self.query_one(CredentialList).current

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in _NEEDS_SELECTION:
            return True
        credential = self.selected
        if credential is None:
            return False
        if action == "copy_totp":
            return credential.kind is Kind.TOTP
        if action in ("reveal", "copy", "rotate", "revoke"):
            return None if credential.status is Status.REVOKED else True
        return True

    # -- actions -----------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        if field.value or self._facet[0] != "all":
            field.value = ""
            self._facet = ("all", None)
            self._apply_filter()
        self.query_one(CredentialList).focus()

    def action_grants(self) -> None:
        self.app.push_screen(GrantsScreen())

    def action_sessions(self) -> None:
        self.app.push_screen(SessionsScreen())

    def action_leaks(self) -> None:
        self.app.push_screen(LeaksScreen())

    def action_rotation(self) -> None:
        self.app.push_screen(RotationScreen())

    def action_compromised(self) -> None:
        credential = self.selected
        if credential is None:
            return
        title = Content.assemble(("Compromised: ", "bold $error"), (credential.name, "bold"))
        body = Content("Marks it exposed, revokes every agent grant to it, rotates it now with no overlap where "
                       "its policy can (else asks you), has the provider revoke the old value, and opens an "
                       "incident with the timeline.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._recover(credential.name)

        self.app.push_screen(ConfirmModal(title, body, "Recover"), confirmed)

    @work(thread=True, exclusive=True, group="compromise")
    def _recover(self, name: str) -> None:
        """In a thread: rotation may run a provider hook for up to its timeout."""
        try:
            incident = recover(self.aegis.vault, name, source="app")
        except AegisError as error:
            self.app.call_from_thread(self._fail, error)
            return
        left = [step.step for step in incident.timeline if step.outcome != "ok"]
        said = f"{name}: incident {incident.short_id} opened" + (f"; left for you: {', '.join(left)}" if left else "")
        self.app.call_from_thread(self._recovered, said)

    def _recovered(self, said: str) -> None:
        self._say(said)
        self.reload()
        self.app.push_screen(IncidentsScreen())

    def action_incidents(self) -> None:
        self.app.push_screen(IncidentsScreen())

    def action_review(self) -> None:
        self.app.push_screen(ReviewScreen())

    def action_sort(self) -> None:
        key = self.query_one(CredentialList).cycle_sort()
        self._say(f"sorted by {key}")

    def _say(self, message: str) -> None:
        """A toast with literal text: messages carry credential names, never markup."""
        self.notify(message, timeout=3, markup=False)

    def _fail(self, error: AegisError) -> None:
        self.notify(str(error), title="Not done", severity="error", timeout=6, markup=False)

    def action_add(self) -> None:
        def added(draft: CredentialDraft | None) -> None:
            if draft is None or draft.value is None:
                return
            try:
                metadata = draft.metadata()
                metadata["tags"] = list(draft.tags)
                credential = self.credentials.add(value=draft.value, **metadata)
            except AegisError as error:
                self._fail(error)
                return
            self._say(f"added {credential.name}")
            self._remember(credential)

        self.app.push_screen(CredentialFormModal(self.aegis.clock), added)

    def action_edit(self) -> None:
        credential = self.selected
        if credential is None:
            return

        def edited(draft: CredentialDraft | None) -> None:
            if draft is None:
                return
            try:
                metadata = draft.metadata()
                metadata["tags"] = list(draft.tags)
                changed = self.credentials.edit(credential.name, **metadata)
            except AegisError as error:
                self._fail(error)
                return
            self._say(f"saved {changed.name}")
            self._remember(changed)

        self.app.push_screen(CredentialFormModal(self.aegis.clock, existing=credential), edited)

    def _remember(self, credential: Credential) -> None:
        """Reload and keep the cursor on ``credential``."""
        self._keep = credential
        self.reload()

    def action_reveal(self) -> None:
        credential = self.selected
        if credential is None:
            return
        if self._revealed and self._revealed[0] == credential.id:
            self._hide_value()
            return
        try:
            value = self.credentials.reveal(credential.name, purpose="tui.reveal")
        except AegisError as error:
            self._fail(error)
            return
        self._revealed = (credential.id, self.aegis.settings.reveal_seconds)
        self._value_text = value.reveal_text()
        self.query_one(DetailPanel).show_revealed(self._value_text, self._revealed[1])

    def _tick_reveal(self) -> None:
        if self._revealed is None:
            return
        credential_id, left = self._revealed
        left -= 1
        if left <= 0:
            self._hide_value()
            return
        self._revealed = (credential_id, left)
        self.query_one(DetailPanel).show_revealed(self._value_text, left)

    def _hide_value(self) -> None:
        if self._revealed is not None:
            self._revealed = None
            self._value_text = ""
            self.query_one(DetailPanel).show_masked()

    def action_copy(self) -> None:
        credential = self.selected
        if credential is None:
            return
        try:
            value = self.credentials.reveal(credential.name, purpose="tui.copy")
        except AegisError as error:
            self._fail(error)
            return
        self._copy(value.reveal_text(), f"copied {credential.name}")

    def action_copy_totp(self) -> None:
        credential = self.selected
        code = self.query_one(TotpPanel).code_for(credential.name) if credential else None
        if code is not None:
            self._copy(code, f"copied the code for {credential.name}")  # type: ignore[union-attr]

    def _copy(self, text: str, message: str) -> None:
        self.app.copy_to_clipboard(text)
        seconds = self.aegis.settings.clipboard_clear_seconds
        if self._clipboard_timer is not None:
            self._clipboard_timer.stop()
        self._clipboard_timer = self.set_timer(seconds, lambda: self.app.copy_to_clipboard(""))
        self._say(f"{message}; clipboard clears in {seconds}s")

    def action_rotate(self) -> None:
        credential = self.selected
        if credential is None:
            return

        def rotated(rotation: Rotation | None) -> None:
            if rotation is None:
                return
            try:
                changed = self.credentials.rotate(credential.name, rotation.value, rotation.overlap_seconds)
            except AegisError as error:
                self._fail(error)
                return
            self._say(f"rotated {changed.name} to v{changed.current_version}")
            self._remember(changed)

        self.app.push_screen(RotateModal(credential, self.aegis.clock), rotated)

    def action_revoke(self) -> None:
        credential = self.selected
        if credential is None:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                changed = self.credentials.set_status(credential.name, Status.REVOKED, reason="revoked in the app")
            except AegisError as error:
                self._fail(error)
                return
            self._say(f"revoked {changed.name}")
            self._remember(changed)

        body = Content.assemble("Every version of ", (credential.name, "bold"),
                                " retires now and its value is never handed out again. The history is kept.")
        self.app.push_screen(ConfirmModal(Content.assemble(("Revoke ", "bold $warning"), (credential.name, "bold")),
                                          body, "Revoke"), confirmed)

    def action_destroy(self) -> None:
        credential = self.selected
        if credential is None:
            return
        versions = len(self.credentials.versions(credential.name))

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.credentials.destroy(credential.name)
            except AegisError as error:
                self._fail(error)
                return
            self._say(f"destroyed {credential.name}")
            self.reload()

        self.app.push_screen(DestroyModal(credential.name, versions), confirmed)
