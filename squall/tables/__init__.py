"""Tables: DynamoDB's data model, expressions and storage."""
