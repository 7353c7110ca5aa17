-- The day's flagged logins by network: flagged logins of $date grouped by
-- the /16 they came from, busiest first. One network behind logins to many
-- entities is a botnet or a proxy; a network of many flags for one entity
-- is usually that person somewhere new.
--
-- @param date                The UTC day (YYYY-MM-DD).
-- @param threshold = 0       Flag above this anomaly_score where the scores carry no flag.
WITH flagged AS (
    SELECT entity, ipv4 >> 16 AS net16, CAST(anomaly_score AS DOUBLE) AS score
    FROM scores
    WHERE date = CAST($date AS DATE)
      AND ipv4 IS NOT NULL
      AND COALESCE(flagged, anomaly_score > CAST($threshold AS DOUBLE))
),
per_network AS (
    SELECT
        CAST(net16 >> 8 AS VARCHAR) || '.' || CAST(net16 & 255 AS VARCHAR) || '.0.0/16' AS network,
        COUNT(*) AS flagged_logins,
        COUNT(DISTINCT entity) AS entities,
        ROUND(MAX(score), 3) AS max_anomaly_score
    FROM flagged
    GROUP BY net16
)
SELECT *
FROM per_network
ORDER BY flagged_logins DESC, network
