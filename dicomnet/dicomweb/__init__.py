"""DICOMweb (PS3.18) over the archive: QIDO-RS (Search), WADO-RS (Retrieve), STOW-RS (Store).

``qido`` turns a search's path and query parameters into the query/retrieve identifier
``dicomnet.qr.matching.parse_identifier`` reads, selects with the same matcher as C-FIND and
answers in DICOM JSON; ``wado`` selects the instances C-MOVE would send, streams their stored
bytes as multipart/related and reads their metadata as DICOM JSON; ``stow`` splits a
store's multipart/related body, streamed, into temp files for ``store_instance``; ``views``
adds the session, the media type and the access log. Only ``dicomnet.urls``
(``dicomweb_urlpatterns``, mounted at /dicomweb/) imports this package.
docs/dicomweb-conformance.md says what is supported.
"""
