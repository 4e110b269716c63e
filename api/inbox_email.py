"""The emails that prove an inbox (`core.inbox.Letter`): sign in, confirm a sign-up, or "you
have an account already", each with its link and the same secret as an API code."""

from __future__ import annotations

from api.web.render import ENV
from core.emails import RenderedEmail
from core.inbox import Letter, Render
from core.settings import Settings


def renderer(settings: Settings) -> Render:
    api_url = f"{settings.public_base_url.rstrip('/')}/v1/tokens"

    def render(letter: Letter) -> RenderedEmail:
        context = {
            "kind": letter.kind,
            "account": letter.account,
            "url": letter.url,
            "code": letter.code,
            "minutes": letter.minutes,
            "api_url": api_url,
        }
        text = ENV.get_template("email/sign_in.txt")
        subject = "".join(text.blocks["subject"](text.new_context(context))).strip()
        return RenderedEmail(
            subject=subject,
            text=text.render(context),
            html=ENV.get_template("email/sign_in.html").render(context),
        )

    return render
