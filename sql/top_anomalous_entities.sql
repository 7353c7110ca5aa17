-- The top anomalous entities of the week: the 50 entities with the most
-- flagged logins in the 7 UTC days ending on $date, then by their highest
-- anomaly_score. Many flagged logins from few addresses is one new place;
-- from many addresses it looks like an account under attack.
--
-- @param date                The last UTC day of the week (YYYY-MM-DD).
-- @param threshold = 0       Flag above this anomaly_score where the scores carry no flag.
WITH week AS (
    SELECT
        entity,
        ip,
        CAST(anomaly_score AS DOUBLE) AS score,
        COALESCE(flagged, anomaly_score > CAST($threshold AS DOUBLE)) AS is_flagged
    FROM scores
    WHERE date BETWEEN CAST($date AS DATE) - INTERVAL '6 days' AND CAST($date AS DATE)
),
per_entity AS (
    SELECT
        entity,
        COUNT(*) AS logins,
        COUNT(CASE WHEN is_flagged THEN 1 END) AS flagged_logins,
        COUNT(DISTINCT CASE WHEN is_flagged THEN ip END) AS flagged_ips,
        COUNT(DISTINCT ip) AS ips,
        ROUND(MAX(score), 3) AS max_anomaly_score,
        ROUND(AVG(score), 3) AS mean_anomaly_score
    FROM week
    GROUP BY entity
)
SELECT *
FROM per_entity
WHERE flagged_logins > 0
ORDER BY flagged_logins DESC, max_anomaly_score DESC, entity
LIMIT 50
