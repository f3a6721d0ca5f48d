"""Crawler settings (a Scrapy settings module: plain names, overridable per job)."""

# The People's Speech discovery query: permissive licenseurl values, audio or video, captions
# present, nothing access-restricted. Slashes are escaped as archive.org's Lucene parser needs.
ARCHIVE_ORG_QUERY = (
    "(licenseurl:*creativecommons.org\\/publicdomain\\/* OR "
    "licenseurl:*creativecommons.org\\/licenses\\/by\\/* OR "
    "licenseurl:*creativecommons.org\\/licenses\\/by-sa\\/* OR "
    "licenseurl:*usa.gov\\/government-works*) "
    "AND mediatype:(audio OR movies) "
    "AND (closed_captioning:yes OR format:SubRip OR format:\"Web Video Text Tracks\") "
    "AND NOT access-restricted-item:TRUE"
)
ARCHIVE_ORG_BASE_URL = "https://archive.org"
