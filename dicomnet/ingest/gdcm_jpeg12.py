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
"""

from __future__ import annotations

import contextlib

from pydicom import uid
from pydicom.pixels.decoders import JPEGExtended12BitDecoder
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
    """Add the plugin to pydicom's JPEG Extended decoder, once per process."""
    with contextlib.suppress(ValueError):  # ValueError: already added
        JPEGExtended12BitDecoder.add_plugin(PLUGIN, (__name__, "decode_frame"))
