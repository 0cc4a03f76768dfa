-- Where each run's time went, for operators and the benchmark (new column at the end).
alter table runs add column timings json;

comment on column runs.timings is 'Seconds per stage of the run (discover, fetch, extract, load, finalise and its parts), as a JSON object; NULL for runs that did not finish.';
