"""Keys the server keeps in its database: made once by whichever process needs one first,
then read by every process and after every restart, so a player's cookie stays valid.
"""
from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.store.db import Sessions
from service.store.models import ServerSecret


async def server_secret(sessions: Sessions, name: str) -> str:
    """The secret called `name`, made now if there is none yet."""
    def made_or_found(session: Session) -> str:
        found = session.get(ServerSecret, name)
        if found is not None:
            return found.value
        value = secrets.token_urlsafe(48)
        session.add(ServerSecret(name=name, value=value))
        return value

    try:
        return await sessions.write(made_or_found)
    except IntegrityError:  # another process made it a moment ago: theirs stands
        return await sessions.read(lambda session: session.get(ServerSecret, name).value)
