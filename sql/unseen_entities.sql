-- The share of unseen entities: per UTC day of the 7 ending on $date, how
-- many logins and entities the model never saw in training (entity_seen is
-- false). Their scores carry little meaning; a share that keeps rising says
-- the model is getting stale and should be retrained.
--
-- @param date                The last UTC day (YYYY-MM-DD).
SELECT
    date,
    COUNT(*) AS logins,
    COUNT(CASE WHEN NOT entity_seen THEN 1 END) AS unseen_logins,
    ROUND(CAST(COUNT(CASE WHEN NOT entity_seen THEN 1 END) AS DOUBLE) / COUNT(*), 4)
        AS unseen_login_share,
    COUNT(DISTINCT entity) AS entities,
    COUNT(DISTINCT CASE WHEN NOT entity_seen THEN entity END) AS unseen_entities,
    ROUND(CAST(COUNT(DISTINCT CASE WHEN NOT entity_seen THEN entity END) AS DOUBLE)
        / COUNT(DISTINCT entity), 4) AS unseen_entity_share
FROM scores
WHERE date BETWEEN CAST($date AS DATE) - INTERVAL '6 days' AND CAST($date AS DATE)
GROUP BY date
ORDER BY date
