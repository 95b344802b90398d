-- 0006_history: replay links and declared field indexes (SPEC §9).

-- A replayed job names the job it copies.
ALTER TABLE job ADD COLUMN replayOf TEXT;
CREATE INDEX job_by_replay ON job (replayOf) WHERE replayOf IS NOT NULL;

-- Fields declared with --index-field: a JSON path into the payload (or the result). A field is usable for searches
-- once `state` is 'ready'; until then a background task fills `jobField` from the jobs older than the declaration,
-- a chunk per short transaction, while the triggers below keep every newer job indexed. A field no longer declared
-- is 'dropping' until its rows are deleted (in chunks too); ids are never reused.
CREATE TABLE indexField (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- As declared: /customer or result/status.
    spec TEXT NOT NULL UNIQUE,
    inResult INTEGER NOT NULL,
    -- SQLite's JSON path for the pointer ($."customer").
    path TEXT NOT NULL,
    state TEXT NOT NULL,
    -- Jobs up to this rowid existed when the field was declared; the build walks them up from builtThrough.
    target INTEGER NOT NULL,
    builtThrough INTEGER NOT NULL,
    createdAt INTEGER NOT NULL
);

-- One row per declared field per job that has a scalar there. Numbers are one kind (42 matches 42.0); true, false
-- and null are kinds of their own with a value of 1 or 0. Keyed for "this field equals this value, newest first".
CREATE TABLE jobField (
    fieldId INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value NOT NULL,
    createdAt INTEGER NOT NULL,
    jobId TEXT NOT NULL,
    PRIMARY KEY (fieldId, kind, value, createdAt, jobId)
) WITHOUT ROWID;
CREATE INDEX jobField_by_job ON jobField (jobId);

-- The field rows of one job (NEW) for every declared field. Only when a field is declared does this cost anything.
CREATE TRIGGER job_field_insert AFTER INSERT ON job WHEN EXISTS (SELECT 1 FROM indexField) BEGIN
    INSERT OR IGNORE INTO jobField (fieldId, kind, value, createdAt, jobId)
    SELECT id, CASE t WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' ELSE t END,
        CASE t WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 0 ELSE json_extract(doc, path) END, NEW.createdAt, NEW.id
    FROM (SELECT id, path, doc, json_type(doc, path) AS t
          FROM (SELECT id, path, CASE inResult WHEN 1 THEN NEW.result ELSE NEW.payload END AS doc FROM indexField WHERE state != 'dropping')
          WHERE json_valid(doc))
    WHERE t IN ('integer', 'real', 'text', 'true', 'false', 'null');
END;

CREATE TRIGGER job_field_update AFTER UPDATE OF payload, result ON job
WHEN (NEW.payload IS NOT OLD.payload OR NEW.result IS NOT OLD.result) AND EXISTS (SELECT 1 FROM indexField) BEGIN
    DELETE FROM jobField WHERE jobId = NEW.id;
    INSERT OR IGNORE INTO jobField (fieldId, kind, value, createdAt, jobId)
    SELECT id, CASE t WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' ELSE t END,
        CASE t WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 0 ELSE json_extract(doc, path) END, NEW.createdAt, NEW.id
    FROM (SELECT id, path, doc, json_type(doc, path) AS t
          FROM (SELECT id, path, CASE inResult WHEN 1 THEN NEW.result ELSE NEW.payload END AS doc FROM indexField WHERE state != 'dropping')
          WHERE json_valid(doc))
    WHERE t IN ('integer', 'real', 'text', 'true', 'false', 'null');
END;

CREATE TRIGGER job_field_delete AFTER DELETE ON job WHEN EXISTS (SELECT 1 FROM jobField WHERE jobId = OLD.id) BEGIN
    DELETE FROM jobField WHERE jobId = OLD.id;
END;
