-- Entities whose score distribution shifted: each entity's mean anomaly_score
-- over the 7 UTC days ending on $date against its baseline, the 21 days
-- before, for entities with at least $min_logins logins in both. Listed when
-- the mean moved by at least $min_shift (in log-odds, the unit of
-- dot_product), largest move first; z is the move in baseline standard
-- deviations. A rise means an entity now logs in from places the model
-- finds unusual for it (a move, a new carrier, or someone else).
--
-- @param date                The last UTC day of the recent week (YYYY-MM-DD).
-- @param min_shift = 1       Smallest change of the mean anomaly_score to list.
-- @param min_logins = 3      Logins an entity needs in each window.
WITH logins AS (
    SELECT
        entity,
        date > CAST($date AS DATE) - INTERVAL '7 days' AS recent,
        CAST(anomaly_score AS DOUBLE) AS score
    FROM scores
    WHERE date BETWEEN CAST($date AS DATE) - INTERVAL '27 days' AND CAST($date AS DATE)
),
per_entity AS (
    SELECT
        entity,
        COUNT(CASE WHEN NOT recent THEN 1 END) AS baseline_logins,
        COUNT(CASE WHEN recent THEN 1 END) AS recent_logins,
        AVG(CASE WHEN NOT recent THEN score END) AS baseline_mean,
        STDDEV_SAMP(CASE WHEN NOT recent THEN score END) AS baseline_stddev,
        AVG(CASE WHEN recent THEN score END) AS recent_mean
    FROM logins
    GROUP BY entity
),
shifted AS (
    SELECT
        entity,
        baseline_logins,
        recent_logins,
        ROUND(baseline_mean, 3) AS baseline_mean,
        ROUND(recent_mean, 3) AS recent_mean,
        ROUND(recent_mean - baseline_mean, 3) AS shift,
        ROUND((recent_mean - baseline_mean) / NULLIF(baseline_stddev, 0), 2) AS z
    FROM per_entity
    WHERE baseline_logins >= CAST($min_logins AS BIGINT)
      AND recent_logins >= CAST($min_logins AS BIGINT)
      AND ABS(recent_mean - baseline_mean) >= CAST($min_shift AS DOUBLE)
)
SELECT *
FROM shifted
ORDER BY ABS(shift) DESC, entity
