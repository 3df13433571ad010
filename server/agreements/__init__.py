"""The agreement of a room: the mediator's draft, the signatures, sealing into a signed PDF.

State (`AgreementState`) lives in the room document (`Room.agreement`), so it works on
both stores and changes atomically with the room. The handwritten marks (PNG), the signed
PDF, the agreement log and a public status snapshot live on disk under
`DATA/agreements/<code>/`, where `code` is the agreement's unguessable public code (the
one in the QR code, `/a/{code}`).

Flow (docs/PROTOCOL.md, "Agreement"):
- `drafting`: the mediator sends `agreement_draft` (the model fields; each party line may
  name the participant id of the room participant who signs it). Everyone in the room
  gets `agreement_state` with the canonical text and its fingerprint.
- `signing`: the mediator sends `agreement_request_signatures` with the fingerprint they
  read; the text is final. Each assigned party signs (`agreement_sign`), then a mediator.
  A signature binds the fingerprint of the text the signer read. Any draft change that
  changes the text clears every signature and goes back to `drafting`.
- `sealing`: the last signature (the mediator's) starts the Notary; `signed` when the
  signed PDF is on disk. A failed seal goes back to `signing` with `seal_error` set, and
  the mediator retries with `agreement_finalize`.

Modules:
- `state`: `AgreementState` in the room document, its room and public views;
- `rules`: the pure rules that change a Room (draft, request signatures, sign, seal);
- `prefill`: what the editor proposes before anything is typed (the invites' parties
  with their sides, the experts who came) — `agreement_prefill`;
- `marks`: the handwritten marks (decoding and checking the PNG, storing it);
- `storage`: the folder `DATA/agreements/<code>/` (log, status snapshot, atomic writes);
- `chain`: the room's recording chain (notes, its head, the chain embedded in the PDF);
- `sealing`: the Notary and the seals in progress;
- `service`: `Agreements`, the socket.io handlers that tie these together;
- `archive`: the agreements in the archive (`GET /api/agreements`), from the archive
  index (server/archive_index/);
- `http`: the REST routes, the status page and the built-in TSA.
"""

from tiaojie.server.agreements.http import PDF_ROLES, AgreementRoutes
from tiaojie.server.agreements.marks import MARK_PREFIX, MAX_MARK_BYTES, MAX_MARK_SIDE, decode_mark
from tiaojie.server.agreements.rules import (
    STALE_SEALING_SECONDS,
    Change,
    draft,
    finalize,
    render,
    request_signatures,
    seal_failed,
    sealed,
    sign,
)
from tiaojie.server.agreements.service import AGREEMENTS, Agreements
from tiaojie.server.agreements.state import (
    CODE_PATTERN,
    AgreementState,
    AgreementStatus,
    Signature,
    get_state,
    new_code,
)
from tiaojie.server.agreements.storage import PDF_FILE

__all__ = [
    "AGREEMENTS",
    "CODE_PATTERN",
    "MARK_PREFIX",
    "MAX_MARK_BYTES",
    "MAX_MARK_SIDE",
    "PDF_FILE",
    "PDF_ROLES",
    "STALE_SEALING_SECONDS",
    "AgreementRoutes",
    "AgreementState",
    "AgreementStatus",
    "Agreements",
    "Change",
    "Signature",
    "decode_mark",
    "draft",
    "finalize",
    "get_state",
    "new_code",
    "render",
    "request_signatures",
    "seal_failed",
    "sealed",
    "sign",
]
