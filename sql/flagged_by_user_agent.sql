-- The day's flagged logins by user agent: flagged logins of $date grouped by
-- the User-Agent header, busiest first. Scripts (curl, python-requests) and
-- one browser string behind many entities stand out here.
--
-- @param date                The UTC day (YYYY-MM-DD).
-- @param threshold = 0       Flag above this anomaly_score where the scores carry no flag.
WITH flagged AS (
    SELECT entity, COALESCE(user_agent, '(none)') AS agent, CAST(anomaly_score AS DOUBLE) AS score
    FROM scores
    WHERE date = CAST($date AS DATE)
      AND COALESCE(flagged, anomaly_score > CAST($threshold AS DOUBLE))
),
per_agent AS (
    SELECT
        agent AS user_agent,
        COUNT(*) AS flagged_logins,
        COUNT(DISTINCT entity) AS entities,
        ROUND(MAX(score), 3) AS max_anomaly_score
    FROM flagged
    GROUP BY agent
)
SELECT *
FROM per_agent
ORDER BY flagged_logins DESC, user_agent
