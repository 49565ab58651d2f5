"""How a config key is declared (its description, rules and how the default config file shows
it), and the password keys that several sections share."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, PrivateAttr, SecretStr

from ..schema import StrictModel


def setting(description: str, **rules: Any) -> Any:
    """A config key's field: ``description`` is its comment in the config file and its line in
    the docs (both generated from it, see config/reference.py). ``rules`` are pydantic's
    (``ge=``, ``alias=``, ...) plus these extras, read by schema.py and config/reference.py:

    - ``allowed``/``hint``: the wording of what the key accepts, in error messages;
    - ``toml``: the value as the default config file shows it, when it is not the default's
      plain TOML form (``num_threads = 0`` for None);
    - ``commented``: shown commented out (optional keys whose absence means something);
    - ``tables``: example ``[[section.key]]`` tables, shown commented out.
    """
    extra = {
        k: rules.pop(k) for k in ("allowed", "hint", "toml", "commented", "tables") if k in rules
    }
    return Field(description=description, json_schema_extra=extra or None, **rules)


PATH = "set it to a path (absolute, or relative to the config)"


def password_file_setting(whose: str) -> Any:
    """The setting of a section's ``password_file``."""
    return setting(
        f"A file holding {whose} password (its trailing newline is stripped). Leave empty to "
        "use the systemd credential below. The password is never logged.",
        allowed=PATH,
        toml='""',
    )


def credential_setting(name: str, empty: str) -> Any:
    """The setting of a section's ``password_credential`` (default ``name``); ``empty`` says
    what an empty credential means there."""
    return setting(
        f"Name of the systemd credential holding the password (LoadCredential={name}:/path in "
        "the unit); read from $CREDENTIALS_DIRECTORY/<name> when password_file is empty. " + empty
    )


class PasswordSection(StrictModel):
    """A section whose password is read by .checks from its ``password_file`` or a systemd
    credential, never from the config file itself."""

    _password: SecretStr | None = PrivateAttr(None)
    _password_source: str = PrivateAttr("")

    @property
    def password(self) -> SecretStr | None:
        """The password (from ``password_file`` or the systemd credential), if any."""
        return self._password

    @property
    def password_source(self) -> str:
        """Where the password came from, for the log (never the password itself)."""
        return self._password_source

    def with_password(self, password: SecretStr | None, source: str) -> Self:
        """A copy that carries ``password``, read from ``source``."""
        copy = self.model_copy()
        copy._password, copy._password_source = password, source
        return copy
