"""The add form: every kind, live TOTP code, inline validation, the value generator."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from aegis_tui.core.errors import NotFoundError
from aegis_tui.core.generate import CHARSETS
from aegis_tui.core.models import Kind
from aegis_tui.core.secret import Secret
from aegis_tui.core.totp import totp_code
from aegis_tui.tui.screens.credential_form_modal import CredentialFormModal
from aegis_tui.tui.screens.vault_screen import VaultScreen

from .conftest import (
    DEMO_COUNT,
    choose,
    digest,
    listing,
    paste,
    plain,
    screen_text,
    select,
    settle,
    toasts,
    type_into,
    unlocked,
    vault_screen,
)

SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # base32, 160 bits
VALUES = {
    Kind.API_KEY: "sk-test-0123456789abcdef",
    Kind.ACCESS_TOKEN: "ghp_abcdefghijklmnopqrstuvwxyz012345",
    Kind.PASSWORD: "correct horse battery staple",
    Kind.CONNECTION_STRING: "postgres://app:pw@db.internal:5432/app",
    Kind.SSH_KEY: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test@host",
    Kind.CERTIFICATE: "-----BEGIN CERTIFICATE-----MIIBfakecert-----END CERTIFICATE-----",
    Kind.TOTP: SEED,
    Kind.SECRET: "just-a-secret-value",
}


async def open_form(pilot) -> CredentialFormModal:
    await pilot.press("a")
    await pilot.pause()
    form = pilot.app.screen
    assert isinstance(form, CredentialFormModal)
    assert form.query_one("#field-name", Input).has_focus
    return form


KINDS = [str(kind) for kind in Kind]


async def fill(pilot, *, name: str, kind: Kind | None = None, value: str | None = None, **fields: str) -> None:
    if kind is not None:
        await choose(pilot, "#field-kind", str(kind), KINDS)
    await type_into(pilot, "#field-name", name)
    for field, text in fields.items():
        await type_into(pilot, f"#field-{field}", text)
    if value is not None:
        await type_into(pilot, "#value-input", value)


@pytest.mark.parametrize("kind", list(Kind), ids=str)
async def test_adding_each_kind_through_the_form_stores_it_with_its_value(make_app, kind):
    built = make_app()
    app = built.app
    name = f"new-{kind}"
    async with unlocked(app) as pilot:
        form = await open_form(pilot)
        await fill(pilot, name=name, kind=kind, value=VALUES[kind], context="acme/test")
        assert form.query_one("#value-input", Input).password  # masked while typed
        totp_line = plain(form.query_one("#form-totp"))
        if kind is Kind.TOTP:
            expected = totp_code(Secret(SEED), built.clock()).code
            shown = f"current code  {expected}" in totp_line  # shown before it is saved
            assert shown, "the form does not show the current TOTP code"
        else:
            assert totp_line == ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen), plain(form.query_one("#form-error"))
        saved = built.credentials().find(name)
        assert (saved.kind, saved.context) == (kind, "acme/test")
        assert digest(built.credentials().reveal(name).reveal_text()) == digest(VALUES[kind])
        assert len(built.credentials().list()) == DEMO_COUNT + 1
        assert listing(app).current.name == name  # the cursor lands on the new credential
        assert any(f"added {name}" in t for t in toasts(app))


async def test_every_metadata_field_of_the_form_is_saved(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await open_form(pilot)
        await fill(pilot, name="full", kind=Kind.API_KEY, value="sk-full-0123456789", service="svc",
                   context="acme/test", tags="b-tag, a-tag", url="https://svc.example", expires="2027-03-31",
                   rotation="45", notes="added in a test")
        await pilot.click("#form-save")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        saved = built.credentials().find("full")
        assert (saved.kind, saved.service, saved.context, saved.tags) == (Kind.API_KEY, "svc", "acme/test",
                                                                           ("a-tag", "b-tag"))
        assert (saved.url, saved.expires, saved.rotation_days, saved.notes) == (
            "https://svc.example", "2027-03-31", 45, "added in a test")
        # The detail panel shows what was saved.
        meta = plain(vault_screen(app).query_one("#detail-meta"))
        assert "aegis://acme/test/full" in meta and "a-tag, b-tag" in meta and "every 45d" in meta


async def test_the_totp_code_follows_the_seed_as_it_is_typed(make_app):
    built = make_app()
    async with unlocked(built.app) as pilot:
        form = await open_form(pilot)
        await fill(pilot, name="otp", kind=Kind.TOTP)
        await type_into(pilot, "#value-input", SEED[:8], keys=True)  # too short for a seed so far
        assert plain(form.query_one("#form-totp")).startswith("✖ a TOTP seed")
        await paste(pilot, SEED[8:-2])
        await pilot.press(*SEED[-2:])
        shown = totp_code(Secret(SEED), built.clock()).code in plain(form.query_one("#form-totp"))
        assert shown, "the form does not show the current TOTP code"
        await choose(pilot, "#field-kind", "secret", KINDS)  # another kind: no code line
        assert plain(form.query_one("#form-totp")) == ""


INVALID = [  # (what is wrong, fields, kind, value, the field the one-line message names)
    ("empty name", {"name": ""}, Kind.SECRET, "value-1", "name:"),
    ("bad context", {"name": "bad-context", "context": "acme prod!"}, Kind.SECRET, "value-1", "context:"),
    ("bad expiry", {"name": "bad-expiry", "expires": "2027-13-45"}, Kind.SECRET, "value-1", "expires:"),
    ("bad TOTP seed", {"name": "bad-seed"}, Kind.TOTP, "not a base32 seed!", "value:"),
]


async def test_an_invalid_field_shows_one_line_naming_it_and_saves_nothing(make_app):
    """Empty name, bad context, bad expiry, bad TOTP seed: one form each, in one session."""
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        for case, fields, kind, value, prefix in INVALID:
            form = await open_form(pilot)
            fields = dict(fields)
            await fill(pilot, name=fields.pop("name"), kind=kind, value=value, **fields)
            audit_before = len(list(built.vault.audit.entries()))
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert app.screen is form, case  # still open, nothing lost
            error = plain(form.query_one("#form-error"))
            assert error.startswith(f"✖ {prefix}"), (case, error)
            assert "\n" not in error and error.count("✖") == 1, case
            assert len(built.credentials().list()) == DEMO_COUNT, case
            assert len(list(built.vault.audit.entries())) == audit_before, case
            if case == "bad context":  # the Save button does the same as Ctrl+S
                await pilot.click("#form-save")
                await settle(pilot)
                assert app.screen is form and plain(form.query_one("#form-error")) == error
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, VaultScreen), case


async def test_fixing_each_complaint_in_turn_then_saving_adds_the_credential(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        form = await open_form(pilot)
        await fill(pilot, name="fixed-later", rotation="0")
        for prefix, selector, fix in (("rotate:", "#field-rotation", "30"), ("value:", "#value-input", "value-1")):
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert app.screen is form
            assert plain(form.query_one("#form-error")).startswith(f"✖ {prefix}")
            await type_into(pilot, selector, fix)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        assert built.credentials().find("fixed-later").rotation_days == 30


async def test_escape_on_a_filled_form_adds_nothing(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await open_form(pilot)
        await fill(pilot, name="never-saved", value="value-2")
        audit_before = len(list(built.vault.audit.entries()))
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        assert len(list(built.vault.audit.entries())) == audit_before
        with pytest.raises(NotFoundError):
            built.credentials().find("never-saved")
async def test_a_duplicate_name_is_refused_with_a_toast_and_not_saved(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await open_form(pilot)
        await fill(pilot, name="GITHUB-DEPLOY", value="value-1")  # names are unique ignoring case
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        assert any("already exists" in t for t in toasts(app))
        assert len(built.credentials().list()) == DEMO_COUNT


async def test_generated_value_has_the_chosen_length_charset_and_prefix_and_is_what_gets_saved(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        form = await open_form(pilot)
        await fill(pilot, name="generated-token")
        await type_into(pilot, "#gen-length", "20")
        await choose(pilot, "#gen-charset", "hex", list(CHARSETS))
        await type_into(pilot, "#gen-prefix", "tok_")
        await pilot.click("#gen-button")
        await pilot.pause()
        generated = form.query_one("#value-input", Input).value
        preview = plain(form.query_one("#value-preview"))
        assert "generated 24 characters (hex, prefix tok_)" in preview
        leaked = generated[4:] in preview
        assert not leaked, "the preview shows the generated value"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        saved = built.credentials().reveal("generated-token").reveal_text()
        assert digest(saved) == digest(generated)
        shape = (saved.startswith("tok_"), len(saved), set(saved[4:]) <= set("0123456789abcdef"))
        assert shape == (True, 24, True)  # prefix, length, hex body


async def test_generator_refuses_a_too_short_length_and_leaves_the_value_empty(make_app):
    built = make_app()
    async with unlocked(built.app) as pilot:
        form = await open_form(pilot)
        await type_into(pilot, "#gen-length", "4")
        await pilot.click("#gen-button")
        await pilot.pause()
        assert plain(form.query_one("#value-preview")).startswith("✖")
        assert form.query_one("#value-input", Input).value == ""


async def test_the_reveal_checkbox_unmasks_the_value_being_typed(make_app):
    built = make_app()
    async with unlocked(built.app) as pilot:
        form = await open_form(pilot)
        await type_into(pilot, "#value-input", "typed-value-xyz")
        field = form.query_one("#value-input", Input)
        assert field.password and "typed-value-xyz" not in screen_text(pilot.app)
        await pilot.click("#value-reveal")
        await pilot.pause()
        assert not field.password and "typed-value-xyz" in screen_text(pilot.app)
        await pilot.click("#value-reveal")
        await pilot.pause()
        assert field.password and "typed-value-xyz" not in screen_text(pilot.app)


async def test_leaving_the_optional_rotation_field_empty_does_not_mark_it_invalid(make_app):
    built = make_app()
    async with unlocked(built.app) as pilot:
        form = await open_form(pilot)
        await pilot.click("#field-rotation")
        await pilot.click("#field-notes")  # blur: validation runs
        await pilot.pause()
        assert not form.query_one("#field-rotation", Input).has_class("-invalid")


async def test_edit_prefills_the_form_and_saves_a_rename_keeping_the_value_and_history(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "github-pat-ci")
        before = built.credentials().find("github-pat-ci")
        value = built.credentials().reveal("github-pat-ci", purpose="test").reveal_text()
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, CredentialFormModal)
        assert not form.query("#value-input")  # the value changes only by rotation
        assert form.query_one("#field-name", Input).value == "github-pat-ci"
        assert form.query_one("#field-context", Input).value == "acme/dev"
        assert form.query_one("#field-tags", Input).value == "ci"
        await type_into(pilot, "#field-name", "github-pat-ci-2")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        after = built.credentials().find("github-pat-ci-2")
        assert (after.id, after.current_version, after.context) == (before.id, before.current_version, "acme/dev")
        assert digest(built.credentials().reveal("github-pat-ci-2").reveal_text()) == digest(value)
        with pytest.raises(NotFoundError):
            built.credentials().find("github-pat-ci")
        assert listing(app).current.name == "github-pat-ci-2"
        assert any("saved github-pat-ci-2" in t for t in toasts(app))


PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
       "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
       "QyNTUxOQAAACBfYWtlS2V5Rm9yVGVzdHNPbmx5Tm90UmVhbEF0QWxsAAAAAAAAAAAAAAAA\n"
       "-----END OPENSSH PRIVATE KEY-----\n")


async def test_a_pasted_multi_line_private_key_is_stored_whole(make_app) -> None:
    built = make_app()
    async with unlocked(built.app) as pilot:
        await open_form(pilot)
        await fill(pilot, name="deploy-key", kind=Kind.SSH_KEY)
        await pilot.click("#value-input")
        await paste(pilot, PEM)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(pilot.app.screen, VaultScreen)
        stored = vault_screen(pilot.app).credentials.reveal("deploy-key", purpose="test")
        assert digest(stored.reveal()) == digest(PEM.encode())
