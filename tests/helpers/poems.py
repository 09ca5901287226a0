"""The poems the tests translate, defined once (Sandburg's "Fog" and Li Bai's "静夜思",
both in the public domain). Test modules import the one they need, usually as POEM."""

from __future__ import annotations

# Carl Sandburg, "Fog" (1916), whole.
FOG = (
    "The fog comes\non little cat feet.\n\n"
    "It sits looking\nover harbor and city\nand then moves on."
)
# Its first five lines, as a file would hold them (trailing newline).
FOG_OPENING = "The fog comes\non little cat feet.\n\nIt sits looking\nover harbor and city\n"
# Its first two lines: below the short-poem thresholds.
FOG_COUPLET = "The fog comes\non little cat feet.\n"
# Fog with markup and an ampersand, for escaping checks.
FOG_WITH_MARKUP = "The fog comes\non little cat feet <script>alert(1)</script>\n\nIt sits & looks"
# Li Bai, "静夜思" (Quiet Night Thought), in two stanzas.
JING_YE_SI = "床前明月光，\n疑是地上霜。\n\n举头望明月，\n低头思故乡。"

# The default: the whole of "Fog".
POEM = FOG
