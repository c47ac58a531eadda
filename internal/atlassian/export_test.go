package atlassian

// KeyFetchBurst is keyFetchBurst, for the external tests.
const KeyFetchBurst = keyFetchBurst
