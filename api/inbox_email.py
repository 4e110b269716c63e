"""The emails that prove an inbox (`core.inbox.Letter`): sign in, confirm a sign-up, or "you
have an account already", each with its link and the same secret as an API code; and a
colleague's invitation to join a company's account (`core.organisation.InvitationLetter`)."""

from __future__ import annotations

from api.web.render import ENV
from core.emails import RenderedEmail
from core.inbox import Letter, Render
from core.organisation import InvitationLetter
from core.organisation import Render as InvitationRender
from core.settings import Settings


def _rendered(name: str, context: dict[str, object]) -> RenderedEmail:
    text = ENV.get_template(f"email/{name}.txt")
    subject = "".join(text.blocks["subject"](text.new_context(context))).strip()
    return RenderedEmail(
        subject=subject,
        text=text.render(context),
        html=ENV.get_template(f"email/{name}.html").render(context),
    )


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
        return _rendered("sign_in", context)

    return render


def invitation_renderer(settings: Settings) -> InvitationRender:
    api_url = f"{settings.public_base_url.rstrip('/')}/v1/organisation/join"

    def render(letter: InvitationLetter) -> RenderedEmail:
        return _rendered("colleague_invitation", {"letter": letter, "api_url": api_url})

    return render
