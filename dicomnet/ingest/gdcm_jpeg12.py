"""A pydicom decoding plugin for 12-bit JPEG Extended (Process 4) through GDCM.

pydicom 3's own 'gdcm' and 'pillow' plugins take JPEG Extended only at 8 bits (a documented
limit of those plugins, not of GDCM, whose bundled IJG libjpeg has a 12-bit build); the
12-bit files used to be decoded by pylibjpeg-libjpeg, which is GPL-3.0 and no longer a
dependency (issue 7). This plugin does what pydicom's 'gdcm' plugin does for the other JPEG
syntaxes, without the 8-bit limit. ``register()`` adds it to pydicom's JPEG Extended decoder
as PLUGIN; previews ask for it by name for 12-bit files (see ``plugin_for``).

GDCM picks its 8, 12 or 16-bit decoder from Bits Allocated, so a 12-bit stream makes it print
"Unsupported JPEG data precision 12" to stderr before the retry that decodes it; the pixels
are right (the preview tests pin them to pylibjpeg-libjpeg's decode of the same file).

GDCM ends the whole process (C++ ``terminate``: an exception nothing catches) on some
corrupt streams, where it should raise: fuzzing found it for JPEG headers and for JPEG 2000
(docs/security.md). So ``register()``
1. checks every JPEG stream first (``check_jpeg``), in this plugin and in pydicom's own
   'gdcm' plugin, which it wraps: a stream refused there is a ValueError, that plugin's
   failure like any other (GDCM is the only decoder installed for JPEG Lossless);
2. takes GDCM off the syntaxes another installed plugin decodes without that risk: JPEG
   2000 (pylibjpeg-openjpeg, Pillow) and JPEG-LS (pyjpegls).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from pydicom import uid
from pydicom.pixels.decoders import (
    JPEG2000Decoder,
    JPEG2000LosslessDecoder,
    JPEGBaseline8BitDecoder,
    JPEGExtended12BitDecoder,
    JPEGLosslessDecoder,
    JPEGLosslessSV1Decoder,
    JPEGLSLosslessDecoder,
    JPEGLSNearLosslessDecoder,
)
from pydicom.pixels.decoders.base import DecodeRunner

try:
    import gdcm
except ImportError:  # pragma: no cover - python-gdcm is a dependency
    gdcm = None

PLUGIN = "gdcm-12bit"
DECODER_DEPENDENCIES = {uid.JPEGExtended12Bit: ("gdcm>=3.0.10",)}


def is_available(transfer_syntax: str) -> bool:
    """pydicom's plugin interface: can this plugin decode ``transfer_syntax`` here?"""
    return gdcm is not None and transfer_syntax in DECODER_DEPENDENCIES


def decode_frame(src: bytes, runner: DecodeRunner) -> bytes:
    """pydicom's plugin interface: one encoded frame to its raw pixel bytes."""
    if runner.samples_per_pixel != 1:
        # JPEG Extended at 12 bits is greyscale in practice; colour is left to the others.
        raise NotImplementedError("12-bit JPEG Extended through GDCM: greyscale only")
    check_jpeg(src)
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(src)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())

    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((runner.columns, runner.rows, 1))
    image.SetDataElement(element)
    photometric = gdcm.PhotometricInterpretation.GetPIType(runner.photometric_interpretation)
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(photometric))
    syntax = gdcm.TransferSyntax.GetTSType(str.__str__(runner.transfer_syntax))
    image.SetTransferSyntax(gdcm.TransferSyntax(syntax))
    bits = runner.bits_stored
    image.SetPixelFormat(
        gdcm.PixelFormat(1, runner.bits_allocated, bits, bits - 1, runner.pixel_representation)
    )
    # GDCM hands the buffer back as str (char*): surrogateescape gives the bytes back.
    frame = image.GetBuffer().encode("utf-8", "surrogateescape")
    if not frame:
        raise RuntimeError("GDCM could not decode the 12-bit JPEG stream")
    return frame


def plugin_for(ds) -> str:
    """The decoding plugin to ask pydicom for, given a header: PLUGIN for 12-bit JPEG
    Extended (which pydicom's own plugins refuse), else "" (pydicom chooses)."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax == uid.JPEGExtended12Bit and int(ds.get("BitsStored", 8) or 8) > 8:
        return PLUGIN
    return ""


def register() -> None:
    """Add the plugin to pydicom's JPEG Extended decoder; check every JPEG stream before
    pydicom's 'gdcm' plugin decodes it (``check_jpeg``); take GDCM off the syntaxes others
    decode (see the module docstring). Once per process.

    pydicom has no API to wrap or withdraw a plugin: its table of available plugins is
    changed in place, so that the order in which pydicom tries them stays as it was."""
    with contextlib.suppress(ValueError):  # ValueError: already added
        JPEGExtended12BitDecoder.add_plugin(PLUGIN, (__name__, "decode_frame"))
    for decoder in _GDCM_JPEG_DECODERS:
        plugins = decoder._available
        original = plugins.get("gdcm")
        if original is not None and not getattr(original, "checked_by_nexrel", False):
            plugins["gdcm"] = _checked(original)
    for decoder in _GDCM_WITHDRAWN:
        plugins = decoder._available
        if "gdcm" in plugins and len(plugins) > 1:
            del plugins["gdcm"]


_GDCM_JPEG_DECODERS = (
    JPEGBaseline8BitDecoder,
    JPEGExtended12BitDecoder,
    JPEGLosslessDecoder,
    JPEGLosslessSV1Decoder,
)
_GDCM_WITHDRAWN = (
    JPEG2000Decoder,
    JPEG2000LosslessDecoder,
    JPEGLSLosslessDecoder,
    JPEGLSNearLosslessDecoder,
)


def _checked(decode: Callable[[bytes, DecodeRunner], bytes]) -> Callable:
    def checked(src: bytes, runner: DecodeRunner) -> bytes:
        check_jpeg(src)
        return decode(src, runner)

    checked.checked_by_nexrel = True  # type: ignore[attr-defined]
    return checked


_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length follows
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG, DAC are not frames


def check_jpeg(src: bytes) -> None:
    """Refuse (ValueError) a JPEG stream GDCM would end the process on, not raise.

    gdcmJPEGBITSCodec asserts (throwing what nothing catches) when IJG libjpeg warns while
    reading the header, and on a frame of neither 1 nor 3 components. So the markers are
    walked from SOI to SOS as libjpeg reads them, refusing what it warns about: bytes where
    a marker should be (JWRN_EXTRANEOUS_DATA), a JFIF version other than 1.x
    (JWRN_JFIF_MAJOR), an Adobe colour transform other than 0, 1 or 2 (JWRN_ADOBE_XFORM).
    """
    if src[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream: it does not start with SOI")
    at = 2
    while True:
        if at >= len(src):
            raise ValueError("the JPEG stream ends before its scan (no SOS marker)")
        if src[at] != 0xFF:
            raise ValueError(f"the JPEG stream has data where a marker should be, at {at}")
        while at < len(src) and src[at] == 0xFF:  # fill bytes
            at += 1
        if at >= len(src):
            raise ValueError("the JPEG stream ends inside a marker")
        marker = src[at]
        at += 1
        if marker == 0xDA:  # SOS: the header is over
            return
        if marker in _STANDALONE:
            continue
        if marker in (0xD8, 0xD9):
            raise ValueError(f"the JPEG stream has marker 0xFF{marker:02X} before its scan")
        length = int.from_bytes(src[at : at + 2], "big")
        segment = src[at + 2 : at + length]
        if length < 2 or len(segment) != length - 2:
            raise ValueError(f"the JPEG marker 0xFF{marker:02X} at {at - 2} runs past the end")
        if marker in _SOF and (len(segment) < 6 or segment[5] not in (1, 3)):
            raise ValueError("the JPEG frame has neither 1 nor 3 components")
        # libjpeg reads a JFIF (APP0) or Adobe (APP14) segment only when it is whole.
        if marker == 0xE0 and len(segment) >= 14 and segment[:5] == b"JFIF\0" and segment[5] != 1:
            raise ValueError("the JPEG stream's JFIF version is not 1.x")
        if marker == 0xEE and len(segment) >= 12 and segment[:5] == b"Adobe":
            if segment[11] not in (0, 1, 2):
                raise ValueError("the JPEG stream's Adobe colour transform is unknown")
        at += length
