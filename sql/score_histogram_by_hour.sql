-- The day's score histogram by hour: how many logins of $date fell in each
-- anomaly_score bucket ($bucket_width wide, labelled by its lower edge), per
-- UTC hour. A new bump at high scores in one hour is a burst of unusual
-- logins; the whole distribution moving right is drift (retrain).
--
-- @param date                The UTC day (YYYY-MM-DD).
-- @param bucket_width = 1    Width of a bucket, in anomaly_score units.
WITH logins AS (
    SELECT
        EXTRACT(HOUR FROM "timestamp") AS hour,
        FLOOR(CAST(anomaly_score AS DOUBLE) / CAST($bucket_width AS DOUBLE))
            * CAST($bucket_width AS DOUBLE) AS bucket
    FROM scores
    WHERE date = CAST($date AS DATE)
)
SELECT hour, bucket, COUNT(*) AS logins
FROM logins
GROUP BY hour, bucket
ORDER BY hour, bucket
