"""A client report's branding (jobs.yaml `report:`): its title, a logo and an accent colour, as
a value; and what makes a CSS colour acceptable there. The colour goes into the report's style
sheet as written, so only plain colour notations pass: #rgb, #rrggbb (with or without alpha),
rgb()/rgba()/hsl()/hsla() of numbers, or one of CSS's named colours."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_TITLE = "Maintenance report"
DEFAULT_ACCENT = "#0072B2"
MAX_TITLE = 200

_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_NUMBER = r"\s*-?\d{1,3}(?:\.\d+)?%?\s*"
_FUNCTION = re.compile(rf"^(?:rgb|rgba|hsl|hsla)\(({_NUMBER},){{2}}{_NUMBER}(,{_NUMBER})?\)$")
NAMED = frozenset(
    """aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue
    blueviolet brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk crimson
    cyan darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki darkmagenta
    darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen darkslateblue
    darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue dimgray dimgrey
    dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro ghostwhite gold goldenrod gray
    green greenyellow grey honeydew hotpink indianred indigo ivory khaki lavender lavenderblush
    lawngreen lemonchiffon lightblue lightcoral lightcyan lightgoldenrodyellow lightgray
    lightgreen lightgrey lightpink lightsalmon lightseagreen lightskyblue lightslategray
    lightslategrey lightsteelblue lightyellow lime limegreen linen magenta maroon
    mediumaquamarine mediumblue mediumorchid mediumpurple mediumseagreen mediumslateblue
    mediumspringgreen mediumturquoise mediumvioletred midnightblue mintcream mistyrose moccasin
    navajowhite navy oldlace olive olivedrab orange orangered orchid palegoldenrod palegreen
    paleturquoise palevioletred papayawhip peachpuff peru pink plum powderblue purple rebeccapurple
    red rosybrown royalblue saddlebrown salmon sandybrown seagreen seashell sienna silver skyblue
    slateblue slategray slategrey snow springgreen steelblue tan teal thistle tomato turquoise
    violet wheat white whitesmoke yellow yellowgreen""".split()  # noqa: SIM905 (148 names)
)
# What a logo may be, by its file's suffix: the data URI's media type.
LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}
MAX_LOGO_BYTES = 2_000_000
# How each kind of image begins: a logo's first bytes must be its suffix's kind, so a file that
# is no image (a symlink to /proc/self/environ named logo.png) never reaches a client's report.
_WEBP = re.compile(rb"^RIFF.{4}WEBP", re.DOTALL)
LOGO_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/svg+xml": (b"<svg", b"<?xml"),
}


def image_problem(suffix: str, data: bytes) -> str | None:
    """Why `data` is not an image of the kind `suffix` names; None when it is."""
    media = LOGO_TYPES.get(suffix.lower())
    if media is None:
        return f"{suffix or 'no suffix'}: not an image type ({', '.join(sorted(LOGO_TYPES))})"
    if media == "image/webp":
        ok = _WEBP.match(data) is not None
    else:
        head = data.removeprefix(b"\xef\xbb\xbf").lstrip() if media == "image/svg+xml" else data
        ok = head.startswith(LOGO_MAGIC[media])
    return None if ok else f"its content is not a {suffix.lower().lstrip('.')} image"


def colour_problem(value: str) -> str | None:
    """Why `value` is not an acceptable CSS colour; None when it is."""
    text = value.strip()
    if _HEX.match(text) or _FUNCTION.match(text.lower()) or text.lower() in NAMED:
        return None
    return (
        f"{value[:40]!r} is not a CSS colour: give #rrggbb (such as #0072B2), rgb(0, 114, 178) "
        "or a named colour (such as teal)"
    )


@dataclass(frozen=True)
class ReportBranding:
    title: str = DEFAULT_TITLE
    logo: str | None = None  # a path, checked readable when jobs.yaml was loaded
    accent: str = DEFAULT_ACCENT
