// Package backup keeps promise P11 of the Data Security & Privacy Statement:
// "backups at least once a day", "backup data is securely stored and
// unauthorized access is not possible", and the backups are kept.
//
//   - A job backs up at least daily (FERRY_BACKUP_EVERY, never longer than a
//     day); `ferry backup now` backs up at once. SQLite is read in one read
//     transaction (a consistent snapshot under WAL) and streamed as a logical
//     dump; PostgreSQL through pg_dump in custom format, joined to an exported
//     snapshot so the row counts in the manifest are exactly the dump's.
//   - Everything is encrypted with age before it leaves the process, to the
//     server's restore identity (wrapped by the KEK: with a KMS, reading a
//     backup needs KMS permission) and to any offline recipients the
//     operators add. No plaintext backup is ever written to disk.
//   - The key tables (tenant_keys, log_day_keys) are not in the main backup:
//     each backup stores them as a separate key object, deleted after
//     FERRY_BACKUP_KEY_DAYS (7). Once that window passes, a shredded tenant
//     (and a request-log day past 60 days) is unreadable in every older
//     backup, because no kept key object holds its keys.
//   - A directory or an S3 bucket (in FERRY_REGION, checked by asking S3, all
//     calls through the egress gate) holds the objects; a signed manifest,
//     written last, records each object's size and SHA-256.
//   - After each backup a restore drill loads it into a scratch database and
//     checks it; the result is recorded and signed. Retention keeps 14 daily,
//     8 weekly and 12 monthly backups and never deletes the newest good one.
package backup
