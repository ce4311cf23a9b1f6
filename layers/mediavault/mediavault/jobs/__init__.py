"""Jobs: the model and state machine, the DynamoDB repository, and the services that change jobs."""
